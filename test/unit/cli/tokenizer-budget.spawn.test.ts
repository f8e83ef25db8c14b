/**
 * A tokenizer.json is an input (issue 18, finding 5): a pre-tokenizer regex that backtracks
 * catastrophically (`(a+)+$` on runs of "a") must not hang `barrier`. Raw text is tokenized in a
 * thread of its own under a time budget (about 10 s for a small text): refused in one line naming
 * the tokenizer, and a cancel stops it at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hfFixture } from '../helpers/hfFixtures';
import { tempDir } from '../helpers/engine-fixtures';
import { assertRefused, root, runCli } from '../helpers/hostile';

describe('tokenizer under a time budget (CLI)', () => {
  const tmp = tempDir('rebasin-tokenizer-budget-');
  const f = (n: string): string => path.join(tmp.dir, n);
  let args: string[];

  before(() => {
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'ignore' });
    fs.cpSync(hfFixture('gpt2-tiny'), f('a'), { recursive: true });
    fs.cpSync(hfFixture('gpt2-tiny'), f('b'), { recursive: true });
    const tokenizer = JSON.parse(fs.readFileSync(path.join(f('a'), 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    tokenizer.pre_tokenizer = { type: 'Split', pattern: { Regex: '(a+)+$' }, behavior: 'Isolated', invert: false };
    fs.writeFileSync(f('tokenizer.json'), JSON.stringify(tokenizer));
    // 2^40 ways to split each line: years of backtracking.
    fs.writeFileSync(f('text.txt'), `${'a'.repeat(40)}!\n`.repeat(3));
    args = ['barrier', f('a'), f('b'), '--data', f('text.txt'), '--tokenizer', f('tokenizer.json'), '--seq-len', '2', '--steps', '3', '--workers', '1', '--no-align'];
  });
  after(() => tmp.cleanup());

  it('a backtracking pre-tokenizer is refused in one line naming the tokenizer', async () => {
    const r = await runCli(args, { timeoutMs: 60_000 });
    assertRefused(r, 'tokenizer.json', /tokenizing text\.txt took over \d+ s/);
  });

  it('SIGTERM while tokenizing ends the run promptly', async () => {
    let sentAt = 0;
    const r = await runCli(args, {
      timeoutMs: 60_000,
      onSpawn: (child) => {
        setTimeout(() => {
          sentAt = Date.now();
          child.kill('SIGTERM');
        }, 3000);
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /cancelled/);
    assert.ok(Date.now() - sentAt < 5000, `stopped ${Date.now() - sentAt} ms after the signal`);
  });
});
