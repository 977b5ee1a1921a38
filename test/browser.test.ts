/**
 * GraphiQL on the gateway, in a real browser (Debian's chromium driven by playwright-core), against
 * the whole supergraph: headers, the docs explorer and a subscription, all through the UI, and
 * nothing loaded from another origin.
 */
import { existsSync } from 'node:fs';
import { DEMO_CREDENTIALS } from '@commerce/users/seed';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSupergraph, type Supergraph } from './support/supergraph.ts';

const CHROMIUM = '/usr/bin/chromium';
// Skipped only on a machine without chromium; in CI (.ci/run installs it) a missing browser fails.
const runs = existsSync(CHROMIUM) || Boolean(process.env.CI);
// Set BROWSER_SCREENSHOT=/tmp/graphiql.png to keep a picture of the page after the query test.
const SCREENSHOT = process.env.BROWSER_SCREENSHOT;

interface Ide {
  page: Page;
  /** Every URL the page requested, sockets included. */
  urls: string[];
  /** Payloads the page sent over its WebSockets. */
  framesSent: string[];
  /** Console errors and uncaught exceptions (a CSP violation is reported as one). */
  problems: string[];
  queryEditor: Locator;
  headersEditor: Locator;
  result: Locator;
}

/** What the page's callbacks use of the browser (the tests are type-checked without the DOM library). */
interface BrowserGlobals {
  localStorage: { getItem(key: string): string | null };
}

describe.skipIf(!runs)('GraphiQL in a browser', () => {
  let sg: Supergraph;
  let browser: Browser;
  let customer: string;
  let admin: string;

  beforeAll(async () => {
    sg = await startSupergraph();
    ({ admin, customer } = await sg.logInDemo());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await sg?.stop();
  });

  /** Opens the gateway URL in a fresh browser context and waits until GraphiQL has loaded the schema. */
  async function openIde(): Promise<Ide> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // Each step waits for what it needs; none needs more than a few seconds.
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    const urls: string[] = [];
    const framesSent: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    page.on('websocket', (ws) => {
      urls.push(ws.url());
      ws.on('framesent', (f) => framesSent.push(String(f.payload)));
    });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(sg.url);
    const ide: Ide = {
      page,
      urls,
      framesSent,
      problems,
      queryEditor: page.locator('.graphiql-query-editor .CodeMirror'),
      headersEditor: page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror'),
      result: page.getByRole('region', { name: 'Result Window' }),
    };
    await ide.queryEditor.waitFor();
    // The docs button is there once introspection has answered.
    await page.getByRole('button', { name: 'Show Documentation Explorer' }).waitFor();
    return ide;
  }

  /** Replaces an editor's text the way a user pasting into it would. */
  async function paste(ide: Ide, editor: Locator, text: string): Promise<void> {
    await editor.click();
    await ide.page.keyboard.press('ControlOrMeta+A');
    await ide.page.keyboard.insertText(text);
    await vi.waitFor(async () => expect(await editorText(editor)).toBe(text));
  }

  /**
   * Types an operation. GraphiQL reads the operation (its name, whether it is a subscription) 100 ms
   * after an edit and stores the text at that moment: running earlier would run the previous one.
   */
  async function pasteOperation(ide: Ide, text: string): Promise<void> {
    await paste(ide, ide.queryEditor, text);
    await ide.page.waitForFunction((t) => (globalThis as unknown as BrowserGlobals).localStorage.getItem('graphiql:query') === t, text);
  }

  /** What a CodeMirror editor holds, all of it (the DOM shows only the lines in view). */
  const editorText = (editor: Locator) => editor.evaluate((el) => (el as unknown as { CodeMirror: { getValue(): string } }).CodeMirror.getValue());

  const resultJson = async (ide: Ide) => JSON.parse((await editorText(ide.result.locator('.CodeMirror'))) || 'null') as unknown;

  /** Nothing but the gateway: no CDN, no fonts from elsewhere, no violation of the page's CSP. */
  function expectOnlyGateway(ide: Ide): void {
    const origins = new Set(ide.urls.filter((u) => !u.startsWith('data:')).map((u) => new URL(u).host));
    expect([...origins]).toEqual([new URL(sg.url).host]);
    expect(ide.problems).toEqual([]);
  }

  it('sends the Authorization header from the headers editor and shows the result', async () => {
    const ide = await openIde();
    const demo = sg.seed.users.find((u) => u.email === DEMO_CREDENTIALS.customer.email)!;
    await pasteOperation(ide, '{ me { name } }');

    await paste(ide, ide.headersEditor, JSON.stringify({ Authorization: `Bearer ${customer}` }));
    await ide.page.getByRole('button', { name: /^Execute query/ }).click();

    await vi.waitFor(async () => expect(await resultJson(ide)).toEqual({ data: { me: { name: demo.name } } }), { timeout: 15_000 });
    expect(await ide.result.innerText()).toContain(demo.name);
    if (SCREENSHOT) await ide.page.screenshot({ path: SCREENSHOT });
    expectOnlyGateway(ide);
    await ide.page.context().close();
  });

  it('browses the schema in the docs explorer', async () => {
    const ide = await openIde();
    await ide.page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
    const docs = ide.page.getByRole('region', { name: 'Documentation Explorer' });
    await docs.getByRole('link', { name: 'Query', exact: true }).click();
    await docs.getByRole('link', { name: 'Product', exact: true }).first().click();

    await docs.getByText('sku', { exact: true }).waitFor();
    expect(await docs.innerText()).toMatch(/priceCents/);
    // A dialog locks scrolling with a <style> element of its own: the page's CSP nonce must cover it.
    await ide.page.getByRole('button', { name: 'Open settings dialog' }).click();
    await ide.page.getByRole('dialog').getByText('Clear storage').waitFor();
    await ide.page.keyboard.press('Escape');
    await ide.page.getByRole('dialog').waitFor({ state: 'detached' });
    expectOnlyGateway(ide);
    await ide.page.context().close();
  });

  it('runs a subscription over graphql-ws with the same header and shows its event', async () => {
    const ide = await openIde();
    const product = sg.seed.products.find((p) => p.active)!;
    const adjust = () =>
      sg.query<{ adjustStock: { stock: number } }>('mutation($id: ID!) { adjustStock(id: $id, delta: 1) { stock } }', { id: product.id }, admin);
    await paste(ide, ide.headersEditor, JSON.stringify({ Authorization: `Bearer ${customer}` }));
    await pasteOperation(ide, `subscription Stock { inventoryChanged(productIds: ["${product.id}"]) { stock delta product { id name } } }`);
    await ide.page.getByRole('button', { name: /^Execute query/ }).click();

    // Live once the gateway has opened the primary on the subgraph: retry the change until an event shows.
    let stock = 0;
    await vi.waitFor(
      async () => {
        stock = (await adjust()).data!.adjustStock.stock;
        await ide.result.filter({ hasText: 'inventoryChanged' }).waitFor({ timeout: 1_000 });
      },
      { timeout: 20_000, interval: 50 },
    );
    // The pane shows one event at a time: the latest, which is the last change made.
    await vi.waitFor(async () =>
      expect(await resultJson(ide)).toEqual({ data: { inventoryChanged: { stock, delta: 1, product: { id: product.id, name: product.name } } } }),
    );

    const init = ide.framesSent.map((f) => JSON.parse(f) as { type: string; payload?: unknown }).find((m) => m.type === 'connection_init');
    expect(init?.payload).toEqual({ authorization: `Bearer ${customer}` });
    expect(ide.urls).toContain(sg.url.replace(/^http/, 'ws'));
    expectOnlyGateway(ide);
    await ide.page.context().close();
  });
});
