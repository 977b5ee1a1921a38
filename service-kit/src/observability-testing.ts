/**
 * Test support: scrapes a `/metrics` endpoint, parses it as Prometheus text (a parse failure fails
 * the test), and reads one sample's value, so tests assert how much a counter moved; and an
 * in-memory span exporter to hand to services as `tracing: { exporter }`.
 */
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';

export { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';

export interface Scrape {
  families: PrometheusFamily[];
  /**
   * The value of the sample of `name` whose labels include `labels` (summed over the samples that
   * match); for a histogram, its count (`field: 'sum'` for its sum). 0 when no sample matches.
   */
  value(name: string, labels?: Record<string, string>, field?: 'count' | 'sum'): number;
}

export async function scrapeMetrics(url: string): Promise<Scrape> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
  if (!res.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`GET ${url} is not Prometheus text: ${res.headers.get('content-type')}`);
  return parseScrape(await res.text());
}

/**
 * The library checks the syntax (it throws on a malformed line) but flattens labelled histograms
 * into one sample, so values are read from the sample lines themselves.
 */
export function parseScrape(text: string): Scrape {
  const families = parsePrometheusTextFormat(text);
  const samples = text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map(parseSampleLine);
  return {
    families,
    value(name, labels = {}, field = 'count') {
      const family = families.find((f) => f.name === name);
      if (!family) return 0;
      const sampleName = family.type === 'HISTOGRAM' || family.type === 'SUMMARY' ? `${name}_${field}` : name;
      let total = 0;
      for (const sample of samples) {
        if (sample.name !== sampleName) continue;
        if (Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) total += sample.value;
      }
      return total;
    },
  };
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseSampleLine(line: string): { name: string; labels: Record<string, string>; value: number } {
  const m = SAMPLE_LINE.exec(line);
  if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
  const labels: Record<string, string> = {};
  for (const [, key = '', value = ''] of (m[2] ?? '').matchAll(LABEL)) labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  return { name: m[1] ?? '', labels, value: Number(m[3]) };
}
