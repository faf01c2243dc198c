// Light or dark: follows the system until the person picks one; the pick is remembered in
// localStorage (a display preference only: nothing secret is ever put there).
import { computed, signal, type ReadonlySignal } from '@preact/signals-core';

export type Theme = 'light' | 'dark';

const STORAGE_KEY = 'umbra.theme';

/** The part of `Storage` the theme needs; absent when the browser refuses storage. */
export interface PreferenceStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export class ThemeModel {
  private readonly chosen = signal<Theme | null>(null);
  private readonly systemDark = signal(false);
  readonly theme: ReadonlySignal<Theme>;
  readonly dark: ReadonlySignal<boolean>;

  constructor(
    private readonly store: PreferenceStore | null,
    systemQuery: MediaQueryList | null,
  ) {
    const saved = safely(() => store?.getItem(STORAGE_KEY));
    if (saved === 'light' || saved === 'dark') this.chosen.value = saved;
    if (systemQuery) {
      this.systemDark.value = systemQuery.matches;
      systemQuery.addEventListener('change', (e) => (this.systemDark.value = e.matches));
    }
    this.theme = computed(() => this.chosen.value ?? (this.systemDark.value ? 'dark' : 'light'));
    this.dark = computed(() => this.theme.value === 'dark');
  }

  toggle(): void {
    const next: Theme = this.theme.peek() === 'dark' ? 'light' : 'dark';
    this.chosen.value = next;
    safely(() => this.store?.setItem(STORAGE_KEY, next));
  }
}

function safely<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined; // storage disabled: the choice lasts for this page only
  }
}
