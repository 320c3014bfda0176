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
import { ConfigError } from '../errors.js';
import { NODE_ID_PATTERN } from '../write/layout.js';

/**
 * Returns `configured` when set, else the id persisted in `dataDir` (creating it).
 * @throws ConfigError naming the file when it holds an invalid id; the file system's
 *   error, its `path` the file's, when it cannot be read or written.
 */
export async function resolveNodeId(configured: string, dataDir: string): Promise<string> {
  if (configured !== '') return configured;
  const file = join(dataDir, '.node-id');
  let saved: string | undefined;
  try {
    saved = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Reading a directory fails with EISDIR and no path: start-up could not say where.
    e.path ??= file;
    if (e.code !== 'ENOENT') throw e;
  }
  if (saved !== undefined) {
    if (!NODE_ID_PATTERN.test(saved)) throw new ConfigError(file, `holds an invalid node id ${JSON.stringify(saved)}: expected ${NODE_ID_PATTERN}; fix or remove it, or set STRATA_NODE_ID`);
    return saved;
  }
  const id = randomBytes(4).toString('hex');
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, `${id}\n`, { flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return;
    throw err;
  });
  return (await readFile(file, 'utf8')).trim();
}
