import {describe, expect, it} from 'vitest';
import {FingerprintTable} from '../../src/lib/quality/fingerprints.js';
import {crossImageChecks, DEFAULT_THRESHOLDS, type Finding, type ImageRecord} from '../../src/lib/quality/validate.js';

const options = {thresholds: DEFAULT_THRESHOLDS, severities: {}, hamming: 8};

function records(shares: Record<string, number>, total = 100): ImageRecord[] {
  const out: ImageRecord[] = [];
  for (const [split, share] of Object.entries(shares)) for (let k = 0; k < Math.round(share * total); k++) out.push({ordinal: out.length, path: `${split}/${k}.jpg`, split, label: k % 2});
  return out;
}

async function checks(images: ImageRecord[], extra: Partial<typeof options & {expectedSplits: Record<string, number>}> = {}, fingerprints = new FingerprintTable()): Promise<Finding[]> {
  const findings: Finding[] = [];
  await crossImageChecks(images, fingerprints, {...options, ...extra}, (f) => findings.push({...f, severity: 'warning'}));
  return findings;
}

describe('cross-image checks', () => {
  it('split-ratio: 80/10/10, 70/15/15, 60/20/20 and train/val only are normal; a small train or a huge test is not', async () => {
    for (const shares of [{train: 0.8, val: 0.1, test: 0.1}, {train: 0.7, val: 0.15, test: 0.15}, {train: 0.6, val: 0.2, test: 0.2}, {train: 0.85, val: 0.15}] as Array<Record<string, number>>) {
      expect(await checks(records(shares)), JSON.stringify(shares)).toEqual([]);
    }
    expect((await checks(records({train: 0.4, val: 0.2, test: 0.4}))).map((f) => f.message)).toEqual([expect.stringContaining('split "train" holds 40.0%'), expect.stringContaining('split "test" holds 40.0%')]);
    // A declared expectation is checked as declared.
    expect((await checks(records({train: 0.6, val: 0.2, test: 0.2}), {expectedSplits: {train: 0.8, val: 0.1, test: 0.1}})).map((f) => f.check)).toEqual(['split-ratio']);
  });

  it('copies: the same label across splits is a leak, a different label is a label conflict (in any split)', async () => {
    const table = new FingerprintTable();
    const fp = (phash: bigint, pixelKey: string): number => table.add({width: 64, height: 64, meanBrightness: 0.5, phash, signature: Int8Array.from({length: 1024}, (_, k) => ((k * 37) % 101) - 50), pixelKey: pixelKey.repeat(16)});
    const images: ImageRecord[] = [
      {ordinal: 0, path: 'train/a.jpg', split: 'train', label: 0, fingerprint: fp(0x0123456789abcdefn, 'a')},
      {ordinal: 1, path: 'test/a.jpg', split: 'test', label: 0, fingerprint: fp(0x0123456789abcdefn, 'a')},
      {ordinal: 2, path: 'train/b.jpg', split: 'train', label: 0, fingerprint: fp(0xfedcba9876543210n, 'b')},
      {ordinal: 3, path: 'train/b-relabelled.jpg', split: 'train', label: 1, fingerprint: fp(0xfedcba9876543211n, 'c')},
    ];
    const found = (await checks(images, {}, table)).filter((f) => f.check !== 'split-ratio' && f.check !== 'class-imbalance').map((f) => `${f.check} ${f.path}`);
    expect(found.sort()).toEqual(['exact-duplicate test/a.jpg', 'label-conflict train/b-relabelled.jpg', 'near-duplicate train/b-relabelled.jpg', 'split-leak test/a.jpg']);
  });
});
