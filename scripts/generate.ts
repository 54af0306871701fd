// Writes the files generated from src/api/crds.ts (npm run generate).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generatedFiles } from './codegen.js';

for (const [path, content] of await generatedFiles()) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content);
  console.log(`wrote ${path}`);
}
