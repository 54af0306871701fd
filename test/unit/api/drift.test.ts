import { readFile } from 'node:fs/promises';
import { describe, expect, it } from '@jest/globals';
import { generatedFiles } from '../../../scripts/codegen.js';

describe('generated API files', () => {
  it('match src/api/crds.ts (run `npm run generate` after changing the API)', async () => {
    const files = await generatedFiles();
    expect(files.size).toBeGreaterThanOrEqual(4);
    for (const [path, expected] of files) {
      const actual = await readFile(path, 'utf8').catch(() => '(missing)');
      expect({ path, content: actual }).toEqual({ path, content: expected });
    }
  });
});
