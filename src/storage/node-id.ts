/**
 * This node's id, which ends every file name it writes (`write/layout.ts`), so that
 * several Strata processes writing to one bucket never collide.
 *
 * The configured id (`STRATA_NODE_ID`) wins; otherwise the id persisted in
 * `{data_dir}/.node-id` is reused, or a random one (8 hex digits) is created and
 * persisted there, so a node keeps its id across restarts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NODE_ID_PATTERN } from '../write/layout.js';

/**
 * Returns `configured` when set, else the id persisted in `dataDir` (creating it).
 * @throws Error when the persisted file holds an invalid id or cannot be written.
 */
export async function resolveNodeId(configured: string, dataDir: string): Promise<string> {
  if (configured !== '') return configured;
  const file = join(dataDir, '.node-id');
  try {
    const saved = (await readFile(file, 'utf8')).trim();
    if (!NODE_ID_PATTERN.test(saved)) throw new Error(`${file} holds an invalid node id ${JSON.stringify(saved)}: expected ${NODE_ID_PATTERN}`);
    return saved;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomBytes(4).toString('hex');
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${id}\n`, { flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return;
    throw err;
  });
  return (await readFile(file, 'utf8')).trim();
}
