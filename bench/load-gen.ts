/**
 * A loopback HTTP load generator in a process of its own, so that it does
 * not share an event loop with the server it measures: a fixed number of
 * keep-alive connections, each sending its next request as soon as the last
 * answer is read, for a fixed time. Driven by bench/run.ts over IPC.
 */
import { Agent, request } from 'node:http';
import { serve } from './lib/worker-side.ts';
import { summarise, type LatencySummary } from './lib/stats.ts';

export interface LoadParams {
  url: string;
  /** Sent with every request; may hold a bearer token, so it arrives over IPC only. */
  headers: Record<string, string>;
  connections: number;
  /** Requests before this are not counted: connection set-up and JIT warm-up. */
  warmupMs: number;
  durationMs: number;
}

export interface LoadAnswer {
  requests: number;
  /** Answers other than 200, and failed requests. */
  errors: number;
  requestsPerSecond: number;
  latency: LatencySummary;
}

function once(agent: Agent, url: URL, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent, headers }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', () => resolve(0));
    });
    req.once('error', () => resolve(0));
    req.end();
  });
}

async function load(params: LoadParams): Promise<LoadAnswer> {
  const url = new URL(params.url);
  const agent = new Agent({ keepAlive: true, maxSockets: params.connections });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const measureFrom = start + params.warmupMs;
  const end = measureFrom + params.durationMs;
  const connection = async (): Promise<void> => {
    for (let now = performance.now(); now < end; now = performance.now()) {
      const status = await once(agent, url, params.headers);
      const done = performance.now();
      if (now < measureFrom || done > end) continue;
      latencies.push(done - now);
      if (status !== 200) errors++;
    }
  };
  await Promise.all(Array.from({ length: params.connections }, connection));
  agent.destroy();
  return {
    requests: latencies.length,
    errors,
    requestsPerSecond: latencies.length / (params.durationMs / 1000),
    latency: summarise(latencies),
  };
}

serve({ load: (params) => load(params as LoadParams) });
