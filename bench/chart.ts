/**
 * One SVG line chart: p50 latency against concurrency, a line per target.
 * Hand-written: a few dozen lines of SVG, where a charting library would
 * bring a browser-sized dependency to draw four lines.
 */
export function latencyChart(
  concurrencies: number[],
  series: { name: string; p50: number[] }[],
): string {
  const width = 720, height = 400, left = 70, right = 250, top = 30, bottom = 50;
  const plotW = width - left - right, plotH = height - top - bottom;
  const maxY = Math.max(...series.flatMap((s) => s.p50)) * 1.1 || 1;
  const x = (i: number) =>
    left + (concurrencies.length === 1 ? plotW / 2 : (i / (concurrencies.length - 1)) * plotW);
  const y = (v: number) => top + plotH - (v / maxY) * plotH;
  const colors = ["#888888", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
  const ticks = Array.from({ length: 6 }, (_, i) => (maxY / 5) * i);
  const escape = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="18" font-size="14">p50 latency (ms) against concurrency (median of runs)</text>
${
    ticks.map((t) =>
      `<line x1="${left}" x2="${left + plotW}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/><text x="${
        left - 8
      }" y="${y(t) + 4}" text-anchor="end">${t.toFixed(1)}</text>`
    ).join("\n")
  }
${
    concurrencies.map((c, i) =>
      `<text x="${x(i)}" y="${top + plotH + 20}" text-anchor="middle">${c}</text>`
    ).join("\n")
  }
<text x="${left + plotW / 2}" y="${height - 10}" text-anchor="middle">concurrent connections</text>
<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>
<line x1="${left}" x2="${left + plotW}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>
${
    series.map((s, k) => {
      const color = colors[k % colors.length];
      const points = s.p50.map((v, i) => `${x(i)},${y(v)}`).join(" ");
      return `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points}"/>
${s.p50.map((v, i) => `<circle cx="${x(i)}" cy="${y(v)}" r="3" fill="${color}"/>`).join("")}
<rect x="${left + plotW + 20}" y="${top + k * 22}" width="14" height="4" fill="${color}"/>
<text x="${left + plotW + 40}" y="${top + k * 22 + 6}">${escape(s.name)}</text>`;
    }).join("\n")
  }
</svg>
`;
}
