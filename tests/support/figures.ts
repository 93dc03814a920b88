/**
 * Figures the reliability suite reports (`deno task reliability` writes them
 * to docs/reliability.md). In the ordinary test run they are not written, and
 * the suite runs at a smaller scale.
 */
export const fullScale = Deno.env.get("RELIABILITY_SCALE") === "full";

export function recordFigure(section: string, name: string, value: number | string): void {
  const file = Deno.env.get("RELIABILITY_FIGURES");
  if (!file) return;
  Deno.writeTextFileSync(file, JSON.stringify({ section, name, value }) + "\n", { append: true });
}
