import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import test, { type ExecutionContext } from 'ava';
import WebSocket, { WebSocketServer } from 'ws';
import { Heartbeat } from '../../src/core/heartbeat.ts';
import { within } from '../../../../tests/helpers/deadline.ts';

const INTERVAL_MS = 50;
const WAIT_MS = 5_000;

/**
 * A real websocket pair on loopback: `server` is the end the heartbeat
 * watches, `client` the peer (its auto-pong as asked); `onBeat` runs as each
 * beat begins.
 */
async function pair(t: ExecutionContext, autoPong = true, onBeat?: () => void): Promise<{ server: WebSocket; client: WebSocket; heartbeat: Heartbeat }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { autoPong });
  const [server] = await accepted;
  await once(client, 'open');
  const heartbeat = new Heartbeat({
    sockets: () => {
      onBeat?.();
      return server.readyState === server.OPEN ? [server] : [];
    },
  }, INTERVAL_MS);
  heartbeat.track(server);
  t.teardown(() => {
    heartbeat.close();
    client.terminate();
    server.terminate();
    wss.close();
  });
  return { server, client, heartbeat };
}

/** Resolves once `socket` has emitted `event` `count` times. */
function counted(socket: WebSocket, event: 'ping' | 'pong', count: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const on = (): void => {
      seen += 1;
      if (seen < count) return;
      socket.off(event, on);
      resolve();
    };
    socket.on(event, on);
  });
}

test('a peer that answers no ping is terminated within two intervals (the control for the test below)', async (t) => {
  const { client, heartbeat } = await pair(t, false);
  heartbeat.start();
  await within(once(client, 'close'), WAIT_MS, 'the silent peer was terminated');
  t.pass();
});

test('a socket its owner paused is never terminated, however long the pause; its peer gets pongs, not pings it could only answer into a full link', async (t) => {
  const { server, client, heartbeat } = await pair(t, false);
  server.pause();
  let pings = 0;
  client.on('ping', () => {
    pings += 1;
  });
  heartbeat.start();
  // Twenty intervals: an unpaused socket whose peer never answers is gone after two (the test above).
  await within(counted(client, 'pong', 20), WAIT_MS, 'the paused socket\'s peer got a pong each interval');
  t.is(server.readyState, server.OPEN);
  t.is(pings, 0);
  // Reading again, the socket is judged again: a peer that still answers nothing is dropped.
  server.resume();
  await within(once(client, 'close'), WAIT_MS, 'the silent peer was terminated once the socket read again');
});

test('a socket that reads again after a long pause stays up while its peer answers', async (t) => {
  const { server, client, heartbeat } = await pair(t);
  server.pause();
  heartbeat.start();
  await within(counted(client, 'pong', 10), WAIT_MS, 'pongs while paused');
  server.resume();
  await within(counted(client, 'ping', 10), WAIT_MS, 'pings once reading again');
  t.is(server.readyState, server.OPEN);
  t.is(client.readyState, client.OPEN);
});

/** Keeps this thread busy, as a long GC or a starved CPU would, while other threads and the kernel go on. */
function stallThisThread(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: no timer, no I/O callback runs meanwhile
  }
}

// Serial, as is the next: a stall holds up the other tests' heartbeats in this process too.
test.serial('a stall in the owner\'s own process is not taken for a silent peer: the answer waiting unread gets one more interval', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  // The peer answers from a thread of its own, so it answers while this one stalls.
  const peer = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const WebSocket = require(workerData.ws);
    const client = new WebSocket(workerData.url);
    client.on('ping', () => parentPort.postMessage('ping'));
    client.on('close', () => parentPort.postMessage('close'));
  `, { eval: true, workerData: { ws: createRequire(import.meta.url).resolve('ws'), url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` } });
  const [server] = await accepted;
  let pings = 0;
  let closed = false;
  peer.on('message', (event: string) => {
    if (event === 'ping') pings += 1;
    else closed = true;
  });
  let beats = 0;
  const heartbeat = new Heartbeat({
    sockets: () => {
      beats += 1;
      // Right after the second ping leaves, before its pong can be read: the next beat comes due during the stall
      // and runs before this thread reads its socket again.
      if (beats === 2) setImmediate(() => stallThisThread(6 * INTERVAL_MS));
      return server.readyState === server.OPEN ? [server] : [];
    },
  }, INTERVAL_MS);
  heartbeat.track(server);
  t.teardown(async () => {
    heartbeat.close();
    server.terminate();
    wss.close();
    await peer.terminate();
  });
  heartbeat.start();
  const tenBeatsLater = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (beats < 12 && server.readyState === server.OPEN) return;
      clearInterval(check);
      resolve();
    }, INTERVAL_MS);
  });
  await within(tenBeatsLater, WAIT_MS, 'twelve heartbeats or a terminated socket');
  t.is(server.readyState, server.OPEN, 'the answering peer was not dropped for the owner\'s stall');
  t.false(closed);
  t.true(pings >= 10, `${pings} pings reached the peer`);
});

test.serial('a peer that answers nothing is still dropped while the owner stalls at every beat', async (t) => {
  const { client, heartbeat } = await pair(t, false, () => setImmediate(() => stallThisThread(3 * INTERVAL_MS)));
  heartbeat.start();
  await within(once(client, 'close'), WAIT_MS, 'the silent peer was terminated though every beat came late');
  t.pass();
});
