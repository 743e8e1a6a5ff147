import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type BrowserContextOptions, chromium, type Page } from 'playwright-core';

/** Debian's chromium (`.ci/run` installs it): no browser is ever downloaded. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, offline-minded flags: no sandbox (root), no GPU, no background traffic of its own. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless Chromium with a fresh profile, and what closes both. */
export async function openBrowser(
  options: BrowserContextOptions = {},
): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'dorsal-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
    ...options,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What a page said on its console as errors, and the exceptions it threw. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

/**
 * The variance of a PNG's pixels (grey levels, 0–255), decoded by the browser itself on a blank
 * page: a blank screenshot has none.
 */
export async function pixelVariance(page: Page, png: Buffer): Promise<number> {
  await page.goto('about:blank');
  // Browser code, as text: this project's TypeScript has no DOM types.
  const variance = await page.evaluate(`(async () => {
    const image = new Image();
    image.src = ${JSON.stringify(`data:image/png;base64,${png.toString('base64')}`)};
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, image.width, image.height);
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < data.length; i += 4) {
      const grey = (data[i] + data[i + 1] + data[i + 2]) / 3;
      sum += grey;
      squares += grey * grey;
    }
    const n = data.length / 4;
    return squares / n - (sum / n) ** 2;
  })()`);
  return Number(variance);
}
