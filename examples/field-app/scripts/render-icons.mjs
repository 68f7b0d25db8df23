// Renders public/icons/icon.svg into the PNG icons the manifest lists (192 and 512 pixels),
// with the machine's Chromium: `node scripts/render-icons.mjs` after changing the SVG.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const icons = new URL("../public/icons/", import.meta.url);
const svg = readFileSync(new URL("icon.svg", icons), "utf8");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  for (const size of [192, 512]) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    const sized = svg.replace('width="512" height="512"', `width="${size}" height="${size}"`);
    await page.setContent(`<html><body style="margin:0">${sized}</body></html>`);
    await page.screenshot({ path: fileURLToPath(new URL(`icon-${size}.png`, icons)), omitBackground: true });
    await page.close();
  }
} finally {
  await browser.close();
}
