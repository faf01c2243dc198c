// What the runner passes to a scenario module and gets back (bench/run.ts loads them by name).

export interface ScenarioOptions {
  quick: boolean;
  log: (line: string) => void;
  /** `--runs N`, for modules that repeat whole runs (E-sweep); others keep their own repeats. */
  runs?: number;
}

export interface ScenarioResult {
  figures: Record<string, number | string | boolean>;
  summary: Record<string, number>;
}
