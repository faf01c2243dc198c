// Entry point of the web client: one UmbraClient on the browser platform, the models around it,
// and the components that render them.
import './no-eval.ts';
import { effect } from '@preact/signals';
import { render } from 'preact';
import { UmbraClient } from '../sdk/index.ts';
import { App } from './components/index.ts';
import { ChatsModel, RoomsModel, SessionModel, ThemeModel, type PreferenceStore } from './models/index.ts';
import { browserPlatform } from './platform.ts';
import './styles.css';

const client = new UmbraClient({ baseUrl: location.origin, platform: browserPlatform() });
const session = new SessionModel(client);
const chats = new ChatsModel(client);
const rooms = new RoomsModel(client, chats);
const theme = new ThemeModel(preferenceStore(), window.matchMedia?.('(prefers-color-scheme: dark)') ?? null);

effect(() => {
  const root = document.documentElement;
  root.dataset.theme = theme.theme.value;
});

render(<App session={session} chats={chats} rooms={rooms} theme={theme} />, document.getElementById('app')!);
void session.start();

function preferenceStore(): PreferenceStore | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
