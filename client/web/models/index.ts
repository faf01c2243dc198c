// The UI's models: they hold the UmbraClient and expose signals; components only render them.
export { ChatsModel, lastMessage, type SafetyNumberView } from './chats.ts';
export { KDF_MEASURE, SessionModel, type AuthMode, type Phase } from './session.ts';
export { ThemeModel, type PreferenceStore, type Theme } from './theme.ts';
export { ROOM_WORDS, USERNAME_RULE, describeError, progressLabel, type ErrorContext } from './words.ts';
export { RoomsModel, lastRoomMessage, type MemberActions, type RoomPolicy } from './rooms.ts';
