// The benchmarks' printed table: each figure beside its baseline and their ratio.

import { round } from './measure.js';

export type Row = [figure: string, value: string, baseline: string, ratio: string];

export class FigureTable {
  readonly rows: Row[] = [];

  /** A figure; with a baseline, the ratio and what it is a ratio of. */
  add(figure: string, value: number, baseline = Number.NaN, note = ''): void {
    this.rows.push([
      figure,
      String(round(value)),
      Number.isNaN(baseline) ? '' : String(round(baseline)),
      Number.isNaN(baseline) ? note : `${round(value / baseline, 3)}x${note === '' ? '' : ` ${note}`}`,
    ]);
  }

  print(title: string): void {
    const widths = [0, 1, 2, 3].map((i) => Math.max(...this.rows.map((r) => r[i]?.length ?? 0), 8));
    const line = (cells: readonly string[]): string =>
      cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
    console.log(`\n${title}\n`);
    console.log(line(['figure', 'Snapback', 'baseline', 'ratio']));
    console.log(line(widths.map((w) => '-'.repeat(w))));
    for (const r of this.rows) console.log(line(r));
  }
}
