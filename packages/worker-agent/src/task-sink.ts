import { MAX_OUTPUT_CHUNK_BYTES, type Exit, type Output } from '@credfwd/shared';

/** Where task frames go, in the order they must reach the coordinator. */
export interface TaskSink {
  send(message: Output | Exit): void;
  /**
   * While the sink holds more than it should (a slow network, or no
   * connection at all), a promise that resolves once it has drained; tasks
   * stop reading their output until then. Undefined when it can take more now.
   */
  backlog(): Promise<void> | undefined;
}

/** Sends a task's bytes, exactly as written, as output frames of at most MAX_OUTPUT_CHUNK_BYTES each. */
export function sendOutput(sink: TaskSink, taskId: string, stream: 'stdout' | 'stderr', bytes: Buffer): void {
  for (let at = 0; at < bytes.length; at += MAX_OUTPUT_CHUNK_BYTES) {
    sink.send({ type: 'output', taskId, stream, data: bytes.subarray(at, at + MAX_OUTPUT_CHUNK_BYTES).toString('base64') });
  }
}
