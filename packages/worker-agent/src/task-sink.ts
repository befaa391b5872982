import { MAX_OUTPUT_CHUNK_BYTES, type Exit, type Output } from '@credfwd/shared';
import { splitUtf8 } from './split-utf8.ts';

/** Where task frames go, in the order they must reach the coordinator. */
export interface TaskSink {
  send(message: Output | Exit): void;
}

/** Sends a task's text as output frames of at most MAX_OUTPUT_CHUNK_BYTES each. */
export function sendOutput(sink: TaskSink, taskId: string, stream: 'stdout' | 'stderr', text: string): void {
  for (const chunk of splitUtf8(text, MAX_OUTPUT_CHUNK_BYTES)) sink.send({ type: 'output', taskId, stream, chunk });
}

