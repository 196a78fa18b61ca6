/**
 * Figures collected round by round. A raw rate on a shared machine drifts with whatever else runs; a ratio of
 * two windows measured seconds apart drifts much less, so the ratios are the results and the raw rates are
 * shown beside them as context.
 */

// Rounds of one result that differ more than this (max/min − 1) say the machine was too unsteady to trust it.
export const DISAGREEMENT = 0.2;

export interface Row {
  name: string;
  /** A result (warned about when its rounds disagree), or context (raw rates, machine conditions). */
  kind: 'result' | 'context';
  digits: number;
  values: (number | undefined)[];
}

export class Rounds {
  readonly rows: Row[] = [];

  constructor(readonly count: number) {}

  row(name: string, kind: Row['kind'], digits: number): Row {
    let row = this.rows.find((r) => r.name === name);
    if (!row) {
      row = { name, kind, digits, values: Array.from({ length: this.count }, () => undefined) };
      this.rows.push(row);
    }
    return row;
  }

  set(round: number, name: string, kind: Row['kind'], digits: number, value: number | undefined): void {
    this.row(name, kind, digits).values[round] = value !== undefined && Number.isFinite(value) ? value : undefined;
  }

  /** The median of a row's rounds. */
  median(name: string): number | undefined {
    const row = this.rows.find((r) => r.name === name);
    return row && summary(row.values)?.median;
  }

  /** One line per result whose rounds disagree by more than DISAGREEMENT. */
  warnings(): string[] {
    return this.rows
      .filter((row) => row.kind === 'result')
      .flatMap((row) => {
        const s = summary(row.values);
        if (!s || s.spread <= DISAGREEMENT) return [];
        return [
          `warning: ${row.name}: rounds disagree by ${formatSpread(s.spread)} (max/min − 1 > ${DISAGREEMENT * 100}%): the machine's speed changed during the run; rerun or lengthen --window`,
        ];
      });
  }

  markdown(): string[] {
    const rounds = Array.from({ length: this.count }, (_, i) => `${i + 1}`);
    return [
      `| | ${rounds.join(' | ')} | median | min | max | max/min − 1 |`,
      `|---|${rounds.map(() => '---:').join('|')}|---:|---:|---:|---:|`,
      ...this.rows.map((row) => {
        const s = summary(row.values);
        const f = (v: number | undefined) => format(v, row.digits);
        const name = row.kind === 'result' ? `**${row.name}**` : row.name;
        const median = row.kind === 'result' ? `**${f(s?.median)}**` : f(s?.median);
        return `| ${name} | ${row.values.map(f).join(' | ')} | ${median} | ${f(s?.min)} | ${f(s?.max)} | ${s ? formatSpread(s.spread) : '–'} |`;
      }),
    ];
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function summary(values: (number | undefined)[]): { median: number; min: number; max: number; spread: number } | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  if (known.length === 0) return undefined;
  const min = Math.min(...known);
  const max = Math.max(...known);
  return { median: median(known), min, max, spread: max === min ? 0 : min > 0 ? max / min - 1 : Infinity };
}

export function format(value: number | undefined, digits: number): string {
  return value === undefined ? '–' : value.toFixed(digits);
}

function formatSpread(spread: number): string {
  return Number.isFinite(spread) ? `${(spread * 100).toFixed(0)}%` : '∞';
}

/** The p-th percentile of latencies in ms, to 0.1 ms. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;
}
