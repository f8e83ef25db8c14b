/**
 * chart.js plots shared by the alignment panel, the barrier side view and the report: loss (and
 * accuracy on a second axis) against the interpolation weight λ for the naive and the aligned
 * path, or, without evaluation data, the weight-space distance to A and to B along both paths.
 * Colours come from the theme (VS Code CSS variables) each time a chart is built; callers rebuild
 * on theme change.
 */
import {
  Chart,
  Filler,
  Legend,
  LinearScale,
  LogarithmicScale,
  LineController,
  LineElement,
  PointElement,
  Title,
  Tooltip,
  type ChartConfiguration,
  type ChartDataset,
} from 'chart.js';
import type { BarrierCurve } from './protocol';
import { fmt } from './dom';
import type { PathDistance } from './protocol';
import type { ThemeColors } from './theme';

// LogarithmicScale: the perplexity axis of language-model curves (without it chart.js throws and draws nothing).
Chart.register(LineController, LineElement, PointElement, LinearScale, LogarithmicScale, Legend, Tooltip, Title, Filler);

type LineConfig = ChartConfiguration<'line', { x: number; y: number }[]>;
type LineDataset = ChartDataset<'line', { x: number; y: number }[]>;

function points(xs: readonly number[], ys: readonly number[]): { x: number; y: number }[] {
  return xs.map((x, i) => ({ x, y: ys[i] }));
}

function baseOptions(theme: ThemeColors, compact: boolean, xTitle: string, yTitle: string): LineConfig['options'] {
  const font = { family: theme.fontFamily, size: compact ? 10 : 12 };
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    color: theme.foreground,
    font,
    plugins: {
      legend: {
        display: !compact,
        position: 'bottom',
        labels: { color: theme.foreground, font, boxWidth: 18, usePointStyle: false },
      },
      tooltip: {
        callbacks: {
          title: (items) => (items.length > 0 ? `λ = ${fmt(items[0].parsed.x ?? NaN, 3)}` : ''),
          label: (c) => `${c.dataset.label ?? ''}: ${formatValue(c.dataset.yAxisID, c.parsed.y ?? NaN)}`,
        },
      },
    },
    scales: {
      x: {
        type: 'linear',
        min: 0,
        max: 1,
        title: { display: !compact, text: xTitle, color: theme.foreground, font },
        ticks: { color: theme.foreground, font, maxTicksLimit: compact ? 3 : 11 },
        grid: { color: theme.grid },
        border: { color: theme.grid },
      },
      y: {
        type: 'linear',
        title: { display: !compact, text: yTitle, color: theme.foreground, font },
        ticks: { color: theme.foreground, font, maxTicksLimit: compact ? 3 : 8 },
        grid: { color: theme.grid },
        border: { color: theme.grid },
      },
    },
  };
}

/** A value as its axis shows it: accuracy (axis y1) in percent, anything else as a number. */
export function formatValue(axis: string | undefined, y: number): string {
  return axis === ACCURACY_AXIS ? `${fmt(y * 100, 3)}%` : fmt(y);
}

/** The right-hand axes: accuracy (a fraction drawn as %) and perplexity (log scale). */
const ACCURACY_AXIS = 'y1';
const PERPLEXITY_AXIS = 'y2';

function line(label: string, data: { x: number; y: number }[], color: string, opts: Partial<LineDataset> = {}): LineDataset {
  return {
    label,
    data,
    borderColor: color,
    backgroundColor: color,
    borderWidth: 2,
    pointRadius: data.length > 30 ? 0 : 2,
    tension: 0,
    ...opts,
  };
}

/** Legend text "… (barrier 0.532)". */
export function barrierLabel(path: string, barrier: number | undefined): string {
  return barrier === undefined ? `${path} loss` : `${path} loss (barrier ${fmt(barrier, 3)})`;
}

/**
 * Loss vs λ, naive (red) and aligned (blue); accuracy dashed on the right axis when present.
 * `compact` hides legend and axis titles (barrier side view).
 */
export function barrierChart(canvas: HTMLCanvasElement, curve: BarrierCurve, theme: ThemeColors, compact = false): Chart<'line', { x: number; y: number }[]> {
  const options = baseOptions(theme, compact, 'λ  (0 = A, 1 = B)', 'loss (solid lines)');
  const datasets: LineDataset[] = [line(barrierLabel('Naive', curve.barrier.naive), points(curve.lambdas, curve.naive.loss), theme.red)];
  if (curve.aligned) {
    datasets.push(line(barrierLabel('Aligned', curve.barrier.aligned), points(curve.lambdas, curve.aligned.loss), theme.blue));
  }
  const hasAcc = !compact && curve.naive.acc.length === curve.lambdas.length;
  if (hasAcc) {
    datasets.push(line('Naive accuracy', points(curve.lambdas, curve.naive.acc), theme.red, { borderDash: [5, 4], borderWidth: 1.5, yAxisID: ACCURACY_AXIS, pointRadius: 0 }));
    if (curve.aligned && curve.aligned.acc.length === curve.lambdas.length) {
      datasets.push(line('Aligned accuracy', points(curve.lambdas, curve.aligned.acc), theme.blue, { borderDash: [5, 4], borderWidth: 1.5, yAxisID: ACCURACY_AXIS, pointRadius: 0 }));
    }
    const font = { family: theme.fontFamily, size: 12 };
    options!.scales![ACCURACY_AXIS] = {
      type: 'linear',
      position: 'right',
      min: 0,
      max: 1,
      title: { display: true, text: 'accuracy, % (dashed lines)', color: theme.foreground, font },
      ticks: { color: theme.foreground, font, callback: (v) => `${Math.round(Number(v) * 100)}%` },
      grid: { drawOnChartArea: false, color: theme.grid },
      border: { color: theme.grid },
    };
  }
  // Language models: perplexity = exp(loss), dotted, on a log axis at the right.
  if (!compact && curve.naive.perplexity && curve.naive.perplexity.length === curve.lambdas.length) {
    const dotted = { borderDash: [2, 3], borderWidth: 1.5, yAxisID: PERPLEXITY_AXIS, pointRadius: 0 };
    datasets.push(line('Naive perplexity', points(curve.lambdas, curve.naive.perplexity), theme.red, dotted));
    if (curve.aligned?.perplexity) datasets.push(line('Aligned perplexity', points(curve.lambdas, curve.aligned.perplexity), theme.blue, dotted));
    const font = { family: theme.fontFamily, size: 12 };
    options!.scales![PERPLEXITY_AXIS] = {
      type: 'logarithmic',
      position: 'right',
      title: { display: true, text: 'perplexity, log scale (dotted lines)', color: theme.foreground, font },
      ticks: { color: theme.foreground, font, maxTicksLimit: 6 },
      grid: { drawOnChartArea: false, color: theme.grid },
      border: { color: theme.grid },
    };
  }
  return new Chart(canvas, { type: 'line', data: { datasets }, options });
}

/**
 * Without evaluation data: distance to A is λ·d and to B is (1−λ)·d along the path
 * (1−λ)·A + λ·B, with d = ‖A − B‖ (naive) or ‖A − π(B)‖ (aligned).
 */
export function distanceChart(canvas: HTMLCanvasElement, distance: PathDistance, theme: ThemeColors, compact = false): Chart<'line', { x: number; y: number }[]> {
  const lambdas = Array.from({ length: 21 }, (_, i) => i / 20);
  const path = (d: number, toA: boolean) => lambdas.map((l) => ({ x: l, y: toA ? l * d : (1 - l) * d }));
  const datasets: LineDataset[] = [
    line(`Naive: to A (‖A−B‖ = ${fmt(distance.naive, 4)})`, path(distance.naive, true), theme.red, { pointRadius: 0 }),
    line('Naive: to B', path(distance.naive, false), theme.red, { borderDash: [5, 4], pointRadius: 0 }),
    line(`Aligned: to A (‖A−π(B)‖ = ${fmt(distance.aligned, 4)})`, path(distance.aligned, true), theme.blue, { pointRadius: 0 }),
    line('Aligned: to π(B)', path(distance.aligned, false), theme.blue, { borderDash: [5, 4], pointRadius: 0 }),
  ];
  const options = baseOptions(theme, compact, 'λ  (0 = A, 1 = B)', 'weight-space distance');
  options!.scales!.y!.min = 0;
  return new Chart(canvas, { type: 'line', data: { datasets }, options });
}

export type LineChart = Chart<'line', { x: number; y: number }[]>;

/**
 * Lets the keyboard read a chart: the canvas takes focus, ←/→ (Home/End) move along λ and show
 * the tooltip of that point, Escape hides it; `announce` gets the point's values as one line
 * (for a live region).
 */
export function enableChartKeyboard(canvas: HTMLCanvasElement, getChart: () => LineChart | undefined, announce: (text: string) => void): void {
  let index = -1;
  canvas.tabIndex = 0;
  const show = (): void => {
    const chart = getChart();
    if (!chart) return;
    const active = chart.data.datasets
      .map((d, datasetIndex) => ({ datasetIndex, index, d }))
      .filter((x) => x.index >= 0 && x.index < x.d.data.length && chart.isDatasetVisible(x.datasetIndex))
      .map(({ datasetIndex, index: i }) => ({ datasetIndex, index: i }));
    chart.setActiveElements(active);
    const el = active.length > 0 ? chart.getDatasetMeta(active[0].datasetIndex).data[index] : undefined;
    chart.tooltip?.setActiveElements(active, { x: el?.x ?? 0, y: el?.y ?? 0 });
    chart.update();
    if (active.length === 0) return;
    const x = chart.data.datasets[active[0].datasetIndex].data[index].x;
    announce(`λ ${fmt(x, 3)}: ` + active.map((a) => {
      const d = chart.data.datasets[a.datasetIndex];
      return `${d.label ?? ''} ${formatValue(d.yAxisID, d.data[index].y)}`;
    }).join('; '));
  };
  canvas.addEventListener('keydown', (e) => {
    const n = Math.max(0, ...(getChart()?.data.datasets.map((d) => d.data.length) ?? [0]));
    if (n === 0) return;
    if (e.key === 'ArrowRight') index = Math.min(n - 1, index + 1);
    else if (e.key === 'ArrowLeft') index = Math.max(0, index < 0 ? 0 : index - 1);
    else if (e.key === 'Home') index = 0;
    else if (e.key === 'End') index = n - 1;
    else if (e.key === 'Escape') index = -1;
    else return;
    e.preventDefault();
    show();
  });
  canvas.addEventListener('blur', () => {
    index = -1;
    show();
  });
}
