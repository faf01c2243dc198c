// The whole page: the top bar, then the sign-in screen or the chat screen.
import type { ChatsModel, RoomsModel, SessionModel, ThemeModel } from '../models/index.ts';
import { AuthScreen } from './AuthScreen.tsx';
import { ChatScreen } from './ChatScreen.tsx';
import { TopBar } from './TopBar.tsx';

export interface AppProps {
  session: SessionModel;
  chats: ChatsModel;
  rooms: RoomsModel;
  theme: ThemeModel;
}

export function App({ session, chats, rooms, theme }: AppProps) {
  const phase = session.phase.value;
  return (
    <>
      <TopBar session={session} theme={theme} />
      {phase === 'starting' && (
        <main class="starting">
          <p role="status">Opening Umbra…</p>
        </main>
      )}
      {phase === 'signed-out' && <AuthScreen session={session} />}
      {phase === 'signed-in' && <ChatScreen chats={chats} rooms={rooms} />}
    </>
  );
}
