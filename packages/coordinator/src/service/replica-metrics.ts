import type { Minted, Minter } from '../core/index.ts';

/** Outcomes counted for refreshes and STS calls. */
export type Outcome = 'success' | 'failure';

/** Gauges read when `/metrics` is scraped. */
export interface MetricsGauges {
  connectedAgents(): number;
  /** Clusters in the service, or undefined when Redis cannot say. */
  clusters(): Promise<number | undefined>;
  /** Seconds to the earliest expiry among the credentials this replica serves, or undefined if none. */
  earliestExpirySeconds(): number | undefined;
}

function counterLines(name: string, help: string, label: string, values: Map<string, number>): string[] {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} counter`];
  for (const [value, count] of [...values].sort()) lines.push(`${name}{${label}="${value}"} ${count}`);
  return lines;
}

function gaugeLines(name: string, help: string, value: number): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`];
}

/**
 * A replica's Prometheus metrics, in the text exposition format (0.0.4):
 * a handful of counters and gauges does not need a client library.
 */
export class ReplicaMetrics {
  readonly #gauges: MetricsGauges;
  readonly #refreshes = new Map<string, number>();
  readonly #stsCalls = new Map<string, number>();
  readonly #refusals = new Map<string, number>();

  constructor(gauges: MetricsGauges) {
    this.#gauges = gauges;
  }

  refresh(outcome: Outcome): void {
    this.#refreshes.set(outcome, (this.#refreshes.get(outcome) ?? 0) + 1);
  }

  stsCall(outcome: Outcome): void {
    this.#stsCalls.set(outcome, (this.#stsCalls.get(outcome) ?? 0) + 1);
  }

  /** A minter whose every STS call is counted. */
  counted(minter: Minter): Minter {
    return {
      mint: async (): Promise<Minted> => {
        try {
          const minted = await minter.mint();
          this.stsCall('success');
          return minted;
        } catch (err) {
          this.stsCall('failure');
          throw err;
        }
      },
    };
  }

  refused(closeCode: number): void {
    const code = String(closeCode);
    this.#refusals.set(code, (this.#refusals.get(code) ?? 0) + 1);
  }

  async render(): Promise<string> {
    const expiry = this.#gauges.earliestExpirySeconds();
    const clusters = await this.#gauges.clusters();
    return [
      ...gaugeLines('credfwd_connected_agents', 'Authenticated agents connected to this replica.', this.#gauges.connectedAgents()),
      ...(clusters === undefined ? [] : gaugeLines('credfwd_clusters', 'Clusters registered in the service.', clusters)),
      ...counterLines('credfwd_refreshes_total', 'Credential refreshes this replica ran, by outcome.', 'outcome', this.#refreshes),
      ...counterLines('credfwd_sts_calls_total', 'STS calls this replica made, by outcome.', 'outcome', this.#stsCalls),
      ...(expiry === undefined ? [] : gaugeLines('credfwd_earliest_credential_expiry_seconds', 'Seconds until the earliest expiry of the credentials this replica serves.', expiry)),
      ...counterLines('credfwd_handshake_refusals_total', 'Agent connections closed with a protocol close code, by code.', 'code', this.#refusals),
      '',
    ].join('\n');
  }
}
