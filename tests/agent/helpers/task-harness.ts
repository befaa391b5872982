import type { Exit, Output } from '@credfwd/shared';
import { TaskRunner } from '../../../packages/worker-agent/src/task-runner.ts';
import { capturedLogger } from '../../helpers/captured-logger.ts';

/** An output frame's bytes. */
export function outputBytes(frame: Output): Buffer {
  return Buffer.from(frame.data, 'base64');
}

/** True for an output frame whose bytes hold `text`. */
export function outputHas(frame: Output | Exit, text: string): boolean {
  return frame.type === 'output' && outputBytes(frame).includes(text);
}

/** The frames, output and exit of one task. */
export interface TaskResult {
  frames: Array<Output | Exit>;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  exit: Exit;
}

/** A runner whose frames a test reads back. */
export interface TaskHarness {
  runner: TaskRunner;
  /** Every frame sent so far, in order. */
  frames: Array<Output | Exit>;
  /** Resolves with the first frame, already sent or still to come, that matches. */
  frame(match: (frame: Output | Exit) => boolean): Promise<Output | Exit>;
  /** Resolves once the task's exit frame is sent. */
  result(taskId: string): Promise<TaskResult>;
  /** The runner's log, as JSON lines. */
  logs(): string;
}

/** A runner whose sink records every frame (and has no backlog unless `backlog` says so); add it to `runners` so an after hook can kill what a failed test left. */
export function taskHarness(runners: TaskRunner[], killGraceMs?: number, backlog: () => Promise<void> | undefined = () => undefined): TaskHarness {
  const frames: Array<Output | Exit> = [];
  const waiters = new Set<() => void>();
  const log = capturedLogger();
  const runner = new TaskRunner({
    logger: log.logger,
    killGraceMs,
    sink: {
      send(message) {
        frames.push(message);
        for (const wake of waiters) wake();
      },
      backlog,
    },
  });
  runners.push(runner);
  const frame = (match: (frame: Output | Exit) => boolean): Promise<Output | Exit> => new Promise((resolve) => {
    const check = (): void => {
      const found = frames.find(match);
      if (!found) return;
      waiters.delete(check);
      resolve(found);
    };
    waiters.add(check);
    check();
  });
  const result = async (taskId: string): Promise<TaskResult> => {
    const exit = await frame((f) => f.type === 'exit' && f.taskId === taskId) as Exit;
    const own = frames.filter((f) => f.taskId === taskId);
    const bytes = (stream: string): Buffer => Buffer.concat(own.filter((f): f is Output => f.type === 'output' && f.stream === stream).map(outputBytes));
    const stdoutBytes = bytes('stdout');
    return { frames: own, stdout: stdoutBytes.toString(), stderr: bytes('stderr').toString(), stdoutBytes, exit };
  };
  return { runner, frames, frame, result, logs: log.text };
}
