/**
 * What the machine was doing while the benchmark ran, read from /proc (Linux). Elsewhere every reading is
 * undefined and the report says so, rather than inventing a figure.
 */
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';

// /proc/<pid>/stat counts in USER_HZ, which Linux fixes at 100 on every architecture Node runs on.
export const TICKS_PER_SECOND = 100;

/** The `cpu` line of /proc/stat: time every core spent, by kind, since boot (in ticks). */
export interface CpuTimes {
  total: number;
  idle: number;
  steal: number;
}

export async function machineCpu(): Promise<CpuTimes | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user and nice]
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const fields = [user, nice, system, idle, iowait, irq, softirq, steal];
    if (fields.some((f) => f === undefined || !Number.isFinite(f))) return undefined;
    const total = fields.reduce((sum: number, f) => sum + f!, 0);
    return { total, idle: idle! + iowait!, steal: steal! };
  } catch {
    return undefined;
  }
}

/** Between two readings: the share of CPU time the hypervisor gave to other guests, and the share in use, in %. */
export function cpuShares(before: CpuTimes | undefined, after: CpuTimes | undefined): { steal: number; busy: number } | undefined {
  if (!before || !after || after.total <= before.total) return undefined;
  const total = after.total - before.total;
  return {
    steal: (100 * (after.steal - before.steal)) / total,
    busy: (100 * (total - (after.idle - before.idle) - (after.steal - before.steal))) / total,
  };
}

/** Steal and busy time over `ms` of wall time. */
export async function sampleCpu(ms: number): Promise<{ steal: number; busy: number } | undefined> {
  const before = await machineCpu();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return cpuShares(before, await machineCpu());
}

/** CPU seconds (user + system, every thread) a process has used so far. */
export async function processCpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields from the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

export async function rssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  } catch {
    return undefined;
  }
}

export function cores(): string {
  const model = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.availableParallelism()} cores (${model})`;
}

export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' / ');
}

/** Where CPU time went, by part of the machine, in seconds since boot (each part's threads or processes summed). */
export type CpuByPart = Record<string, number>;

/** Fields of a /proc stat line after the command name: utime is [11], stime [12], nice [16] (0-based). */
async function statFields(path: string): Promise<{ comm: string; fields: string[] } | undefined> {
  try {
    const stat = await readFile(path, 'utf8');
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    return { comm: stat.slice(open + 1, close), fields: stat.slice(close + 2).split(' ') };
  } catch {
    return undefined;
  }
}

const seconds = (fields: string[]) => (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;

/** The one reading of cpuByPart that is not CPU time. */
export const WAITING = 'server event loop ready but waiting for a core (not CPU time)';

/**
 * CPU seconds so far of every part a login window keeps busy: the server's event-loop thread, its hashing threads
 * (the threads at a raised nice value), its other threads (garbage collection, libuv's pool), PostgreSQL's
 * processes (its background processes and the backends of `database`, not other databases' clients), Redis, and
 * this process (the load generator). Processes are read one by one (`part#pid`): cpuSpent counts only those alive
 * at both readings. Linux only: elsewhere, undefined.
 */
export async function cpuByPart(serverPid: number, database?: string): Promise<CpuByPart | undefined> {
  const parts: CpuByPart = { 'server event loop': 0, 'server hashing threads': 0, 'server other threads': 0 };
  let tasks: string[];
  let processes: string[];
  try {
    tasks = await readdir(`/proc/${serverPid}/task`);
    processes = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  for (const tid of tasks) {
    const stat = await statFields(`/proc/${serverPid}/task/${tid}/stat`);
    if (!stat) continue;
    const part = tid === String(serverPid) ? 'server event loop' : Number(stat.fields[16]) > 0 ? 'server hashing threads' : 'server other threads';
    parts[part]! += seconds(stat.fields);
  }
  for (const pid of processes) {
    const stat = await statFields(`/proc/${pid}/stat`);
    if (stat?.comm === 'redis-server') parts[`Redis#${pid}`] = seconds(stat.fields);
    if (stat?.comm !== 'postgres') continue;
    // A backend's title is "postgres: [<cluster>: ]<user> <database> <client address> <state>"; a background
    // process ("postgres: 15/main: walwriter") has no client address.
    const title = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const client = /^postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])/.exec(title);
    if (!client || client[1] === database) parts[`PostgreSQL#${pid}`] = seconds(stat.fields);
  }
  // Not CPU time: how long the event loop was ready to run while another thread or process had the core (schedstat's
  // second field, in ns). A V8 profile counts that time in whatever call the thread was in, often a socket write
  // that woke the process it wrote to.
  const schedstat = await readFile(`/proc/${serverPid}/task/${serverPid}/schedstat`, 'utf8').catch(() => undefined);
  if (schedstat) parts[WAITING] = Number(schedstat.split(' ')[1]) / 1e9;
  const own = process.cpuUsage();
  parts['load generator (this process)'] = (own.user + own.system) / 1e6;
  const machine = await machineCpu();
  if (machine) parts['whole machine (busy)'] = (machine.total - machine.idle - machine.steal) / TICKS_PER_SECOND;
  return parts;
}

/** What each part used between two readings; a process read only once (started or ended between them) is left out. */
export function cpuSpent(before: CpuByPart | undefined, after: CpuByPart | undefined): CpuByPart | undefined {
  if (!before || !after) return undefined;
  const spent: CpuByPart = { PostgreSQL: 0, Redis: 0 };
  for (const [key, value] of Object.entries(after)) {
    if (before[key] === undefined && key.includes('#')) continue;
    const part = key.split('#')[0]!;
    spent[part] = (spent[part] ?? 0) + value - (before[key] ?? 0);
  }
  return spent;
}
