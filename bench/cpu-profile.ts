/**
 * Where the server's main thread spent its CPU during chosen windows, from a V8 `.cpuprofile` (node --cpu-prof).
 * Only the samples inside the windows count, so a profile of the whole run still answers "what does a login
 * cost besides its hash". The hashing threads write profiles of their own and are left out: the hash is what
 * the ceiling already measures.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A window in microseconds of the monotonic clock, which V8's profile timestamps also count in. */
export interface Window {
  startUs: number;
  endUs: number;
}

export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The main thread's profile among those --cpu-prof wrote to `dir` (named CPU.<date>.<time>.<pid>.<thread>.<seq>). */
export async function mainThreadProfile(dir: string, pid: number): Promise<string | undefined> {
  const files = await readdir(dir).catch(() => []);
  const main = files.find((f) => f.endsWith('.cpuprofile') && f.split('.')[3] === String(pid) && f.split('.')[4] === '0');
  return main && join(dir, main);
}

function where(node: ProfileNode, root: string): { item: string; area: string } {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return { item: name, area: name.startsWith('(') ? name : 'native' };
  // The only WebAssembly the service runs is the embedded PostgreSQL.
  if (url.startsWith('wasm://')) return { item: `${name} (${url})`, area: 'WebAssembly (PGlite)' };
  const file = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(file);
  if (pkg) return { item: `${name} (${pkg[1]}/${pkg[2]}:${lineNumber + 1})`, area: pkg[1]! };
  if (file.startsWith('node:')) return { item: `${name} (${file}:${lineNumber + 1})`, area: 'node internals' };
  const local = file.startsWith(root) ? file.slice(root.length) : file;
  return { item: `${name} (${local}:${lineNumber + 1})`, area: `service: ${local}` };
}

/**
 * The heaviest areas (package, node internals, each service file) and functions by self time, and the service's
 * own functions by the time spent in them or anything they called (synchronously: a stack ends at an await),
 * as shares of the busy (non-idle) time inside the windows.
 */
export async function summarize(file: string, windows: Window[], root: string, what = 'login', top = 15): Promise<string[]> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
  const items = new Map<string, number>();
  const service = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    time += delta;
    if (!windows.some((w) => time >= w.startUs && time <= w.endUs)) continue;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += delta;
      continue;
    }
    busy += delta;
    const { item, area } = where(node, root);
    items.set(item, (items.get(item) ?? 0) + delta);
    areas.set(area, (areas.get(area) ?? 0) + delta);
    const onStack = new Set<string>();
    for (let frame: ProfileNode | undefined = node; frame; frame = parent.get(frame.id)) {
      const at = where(frame, root);
      if (at.area.startsWith('service: ')) onStack.add(at.item);
    }
    for (const serviceItem of onStack) service.set(serviceItem, (service.get(serviceItem) ?? 0) + delta);
  }
  if (busy === 0) return ['(no samples inside the windows)'];
  const share = (us: number) => `${((100 * us) / busy).toFixed(1)}%`.padStart(6);
  const heaviest = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `main thread busy ${((100 * busy) / (busy + idle)).toFixed(0)}% of the ${what} windows; shares of that busy time:`,
    'by area:',
    ...heaviest(areas).map(([area, us]) => `  ${share(us)}  ${area}`),
    'by function (self time):',
    ...heaviest(items).map(([item, us]) => `  ${share(us)}  ${item}`),
    "the service's functions, with what they called:",
    ...heaviest(service).map(([item, us]) => `  ${share(us)}  ${item}`),
  ];
}
