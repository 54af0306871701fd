// Two charts as PNG (SVG drawn here, rasterised by resvg): the latency distributions as CDFs on
// a log axis, and the write-throughput ceiling over concurrency with the reconcilers' rates.

import { writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';

const WIDTH = 900;
const HEIGHT = 520;
const MARGIN = { left: 80, right: 30, top: 50, bottom: 60 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

export interface Series {
  label: string;
  points: [number, number][];
  dashed?: boolean;
}

interface Axis {
  min: number;
  max: number;
  log: boolean;
  ticks: number[];
  title: string;
  format(value: number): string;
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function scale(axis: Axis, value: number, from: number, to: number): number {
  const t = axis.log
    ? (Math.log10(value) - Math.log10(axis.min)) / (Math.log10(axis.max) - Math.log10(axis.min))
    : (value - axis.min) / (axis.max - axis.min);
  return from + Math.min(1, Math.max(0, t)) * (to - from);
}

function chart(title: string, x: Axis, y: Axis, series: Series[]): string {
  const [left, right] = [MARGIN.left, WIDTH - MARGIN.right];
  const [bottom, top] = [HEIGHT - MARGIN.bottom, MARGIN.top];
  const sx = (v: number): number => scale(x, v, left, right);
  const sy = (v: number): number => scale(y, v, bottom, top);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="DejaVu Sans" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="16">${escape(title)}</text>`,
  ];
  for (const tick of x.ticks) {
    parts.push(
      `<line x1="${sx(tick)}" y1="${top}" x2="${sx(tick)}" y2="${bottom}" stroke="#e5e5e5"/>`,
      `<text x="${sx(tick)}" y="${bottom + 18}" text-anchor="middle">${x.format(tick)}</text>`,
    );
  }
  for (const tick of y.ticks) {
    parts.push(
      `<line x1="${left}" y1="${sy(tick)}" x2="${right}" y2="${sy(tick)}" stroke="#e5e5e5"/>`,
      `<text x="${left - 8}" y="${sy(tick) + 4}" text-anchor="end">${y.format(tick)}</text>`,
    );
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#444"/>`,
    `<text x="${(left + right) / 2}" y="${HEIGHT - 15}" text-anchor="middle">${escape(x.title)}</text>`,
    `<text transform="translate(20 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escape(y.title)}</text>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000';
    const path = s.points.map(
      ([px, py], j) => `${j === 0 ? 'M' : 'L'}${sx(px).toFixed(1)},${sy(py).toFixed(1)}`,
    );
    parts.push(
      `<path d="${path.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<line x1="${left + 15}" y1="${top + 18 + i * 20}" x2="${left + 45}" y2="${top + 18 + i * 20}" stroke="${colour}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${left + 52}" y="${top + 22 + i * 20}">${escape(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function writePng(file: string, svg: string): void {
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render();
  writeFileSync(file, png.asPng());
}

/** Points of the empirical CDF; values below the axis minimum are drawn at it. */
export function cdf(values: readonly number[], floor: number): [number, number][] {
  const sorted = values.map((v) => Math.max(v, floor)).sort((a, b) => a - b);
  return sorted.map((v, i) => [v, (i + 1) / sorted.length]);
}

const decades = (min: number, max: number): number[] => {
  const ticks: number[] = [];
  for (let v = min; v <= max * 1.0001; v *= 10) ticks.push(v);
  return ticks;
};

export function latencyChart(file: string, series: Series[]): void {
  const all = series.flatMap((s) => s.points.map(([x]) => x));
  const max = 10 ** Math.ceil(Math.log10(Math.max(10, ...all)));
  const x: Axis = {
    min: 0.1,
    max,
    log: true,
    ticks: decades(0.1, max),
    title: 'latency, ms (log scale)',
    format: (v) => (v < 1 ? v.toFixed(1) : String(v)),
  };
  const y: Axis = {
    min: 0,
    max: 1,
    log: false,
    ticks: [0, 0.25, 0.5, 0.75, 0.9, 1],
    title: 'fraction of events',
    format: (v) => v.toFixed(2),
  };
  writePng(file, chart('Event to next phase write, with the write-to-watch round trip', x, y, series));
}

export function throughputChart(file: string, series: Series[]): void {
  const ys = series.flatMap((s) => s.points.map(([, v]) => v));
  const top = Math.max(...ys) * 1.15;
  const step = 10 ** Math.floor(Math.log10(top / 2));
  const ticks = Array.from({ length: Math.floor(top / step) + 1 }, (_, i) => i * step).filter(
    (_, i, all) => all.length <= 12 || i % 2 === 0,
  );
  const x: Axis = {
    min: 1,
    max: 64,
    log: true,
    ticks: [1, 2, 4, 8, 16, 32, 64],
    title: 'concurrent writers',
    format: String,
  };
  const y: Axis = { min: 0, max: top, log: false, ticks, title: 'writes per second', format: String };
  writePng(file, chart('Status writes per second: ceiling, client-go and Snapback', x, y, series));
}

export interface Bar {
  label: string;
  value: number;
  /** Bars of one group share a colour and a legend entry. */
  group: string;
}

/** Horizontal bars, one per figure, coloured by group, each with its value at its end. */
export function barChart(file: string, title: string, bars: Bar[]): void {
  const rowHeight = 24;
  const labelWidth = 190;
  const height = MARGIN.top + bars.length * rowHeight + MARGIN.bottom;
  const [left, right] = [MARGIN.left + labelWidth, WIDTH - MARGIN.right - 60];
  const max = Math.max(...bars.map((bar) => bar.value)) * 1.05;
  const groups = [...new Set(bars.map((bar) => bar.group))];
  const colour = (group: string): string => COLOURS[groups.indexOf(group) % COLOURS.length] ?? '#000';
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="DejaVu Sans" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="16">${escape(title)}</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = MARGIN.top + i * rowHeight;
    const width = ((right - left) * bar.value) / max;
    parts.push(
      `<text x="${left - 8}" y="${y + 16}" text-anchor="end">${escape(bar.label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${width.toFixed(1)}" height="${rowHeight - 8}" fill="${colour(bar.group)}"/>`,
      `<text x="${(left + width + 6).toFixed(1)}" y="${y + 16}">${bar.value.toFixed(0)}</text>`,
    );
  });
  groups.forEach((group, i) => {
    const x = left + i * 140;
    const y = height - 25;
    parts.push(
      `<rect x="${x}" y="${y - 11}" width="14" height="14" fill="${colour(group)}"/>`,
      `<text x="${x + 20}" y="${y}">${escape(group)}</text>`,
    );
  });
  parts.push('</svg>');
  writePng(file, parts.join('\n'));
}
