import { isUtf8 } from 'node:buffer';
import test from 'ava';
import { KeptOutput, MAX_KEPT_OUTPUT_BYTES } from '../../src/core/kept-output.ts';

test('KeptOutput keeps bytes exact up to MAX_KEPT_OUTPUT_BYTES, then marks the truncation without cutting a character', (t) => {
  const kept = new KeptOutput();
  kept.append(Buffer.alloc(MAX_KEPT_OUTPUT_BYTES - 1, 0x61));
  // A 3-byte character across the limit: cut before it, so the text stays UTF-8.
  kept.append(Buffer.from('€€'));
  kept.append(Buffer.from('dropped'));
  const bytes = kept.bytes();
  const marker = '\n[credfwd: output truncated]\n';
  t.is(bytes.length, MAX_KEPT_OUTPUT_BYTES - 1 + marker.length);
  t.true(bytes.subarray(-marker.length).equals(Buffer.from(marker)));
  t.true(isUtf8(bytes));
});

test('KeptOutput keeps bytes that are not UTF-8 as they are', (t) => {
  const kept = new KeptOutput();
  kept.append(Buffer.from([0xff]));
  kept.append(Buffer.from([0xfe, 0x00]));
  t.deepEqual(kept.bytes(), Buffer.from([0xff, 0xfe, 0x00]));
});
