/** A request handler of a bench/ program: takes the params, returns what is sent back. */
export type Handler = (params: unknown) => unknown;

interface Request {
  id: number;
  method: string;
  params: unknown;
}

/**
 * Answers the orchestrator's requests (see `spawnWorker`). The program exits
 * as soon as its parent goes away, so a crashed orchestrator leaves nothing
 * behind.
 */
export function serve(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('this program is started by bench/run.ts with an IPC channel');
  const send = process.send.bind(process);
  process.on('disconnect', () => process.exit(1));
  process.on('message', (request: Request) => {
    const handler = handlers[request.method];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown request ${request.method}`);
        return handler(request.params);
      })
      .then(
        (value: unknown) => send({ id: request.id, ok: true, value }),
        (err: unknown) => send({ id: request.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
  });
}
