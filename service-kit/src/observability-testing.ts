/**
 * Test support: reads a Prometheus exposition (parse-prometheus-text-format, which throws on a
 * malformed line) and one figure summed over matching series, so tests assert how much a counter
 * moved; and an in-memory span exporter to hand to services as `tracing: { exporter }`.
 */
import parsePrometheusTextFormat, { type PrometheusFamily, type PrometheusSample } from 'parse-prometheus-text-format';

export { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
export { SpanKind } from '@opentelemetry/api';

export class Scrape {
  constructor(readonly families: readonly PrometheusFamily[]) {}

  static async of(url: string): Promise<Scrape> {
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
    return Scrape.parse(await res.text());
  }

  /**
   * The parser folds a histogram's series into one and drops their labels (it only handles
   * unlabelled histograms); read untyped, `<name>_bucket`, `_sum` and `_count` are families of
   * their own, each series with its labels (one family per run of lines: a name can recur).
   */
  static parse(text: string): Scrape {
    return new Scrape(parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped')));
  }

  /** Every series of the family `name`. */
  series(name: string): PrometheusSample[] {
    return this.families.filter((f) => f.name === name).flatMap((f) => f.metrics);
  }

  /** A counter's or gauge's value, summed over the series whose labels include `labels`; 0 when none does. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.#matching(name, labels).reduce((sum, s) => sum + Number(s.value ?? 0), 0);
  }

  /** A histogram's `_count`, summed over the series whose labels include `labels`. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(`${name}_count`, labels);
  }

  /** The values one label takes across a family's series. */
  labelValues(name: string, label: string): string[] {
    const series = this.series(name).length ? this.series(name) : this.series(`${name}_count`);
    return [...new Set(series.map((s) => s.labels?.[label]).filter((v): v is string => v !== undefined))];
  }

  #matching(name: string, labels: Record<string, string>) {
    return this.series(name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
  }
}

/** Scrapes `url` (a `/metrics` endpoint). */
export const scrapeMetrics = (url: string): Promise<Scrape> => Scrape.of(url);
