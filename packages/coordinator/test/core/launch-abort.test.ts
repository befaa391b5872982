import test from 'ava';
import { CredfwdError } from '@credfwd/shared';
import { launchAborted, unlessAborted } from '../../src/core/launch-abort.ts';

/** A promise the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

test('unlessAborted settles as the work does when nothing aborts it', async (t) => {
  const controller = new AbortController();
  t.is(await unlessAborted(Promise.resolve(7), controller.signal, () => t.fail('nothing to abandon')), 7);
  await t.throwsAsync(unlessAborted(Promise.reject(new Error('sts down')), controller.signal, () => undefined), { message: 'sts down' });
  t.is(await unlessAborted(Promise.resolve('no signal'), undefined, () => undefined), 'no signal');
});

test('unlessAborted rejects with ABORTED as soon as the signal aborts, and hands what the work yields later to abandon', async (t) => {
  const controller = new AbortController();
  const work = deferred<string>();
  const abandoned: string[] = [];
  const racing = unlessAborted(work.promise, controller.signal, (late) => abandoned.push(late));
  controller.abort('SIGINT');
  const error = await t.throwsAsync(racing, { instanceOf: CredfwdError, code: 'ABORTED' });
  t.regex(error?.message ?? '', /\(SIGINT\)/);
  t.deepEqual(abandoned, [], 'nothing yielded yet');
  work.resolve('cluster-1');
  await work.promise;
  await Promise.resolve();
  t.deepEqual(abandoned, ['cluster-1'], 'what came late is disposed of');
});

test('unlessAborted with an already aborted signal rejects at once and still disposes of the work', async (t) => {
  const abandoned: number[] = [];
  await t.throwsAsync(unlessAborted(Promise.resolve(3), AbortSignal.abort('SIGTERM'), (late) => abandoned.push(late)), { code: 'ABORTED' });
  await Promise.resolve();
  t.deepEqual(abandoned, [3]);
});

test('launchAborted names the interrupt and carries it as the cause', (t) => {
  const error = launchAborted(AbortSignal.abort('SIGHUP'));
  t.is(error.code, 'ABORTED');
  t.regex(error.message, /interrupted \(SIGHUP\) before every worker was ready/);
  t.is(error.cause, 'SIGHUP');
});
