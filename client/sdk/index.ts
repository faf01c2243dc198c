// The Umbra client SDK: everything a browser UI, a bot or a test needs to speak the protocol.
export { UmbraClient, type ClientOptions, type Progress, type ProgressCallback } from './client.ts';
export { Conversation } from './conversation.ts';
export { SecurityStats, type RejectReason, type Rejection } from './stats.ts';
export type { ChatMessage, MessageFlag, SendOptions } from './timeline.ts';
export { MessageCache, CACHE_LIMIT } from './message-cache.ts';
export type { Notice } from './counters.ts';
export { Room, type RoomMember, type RoomState } from './room.ts';
export type { RoomOptions } from './rooms.ts';
export type { JoinRequestView } from './join-requests.ts';
export { sealRekey } from './room-changes.ts';
export { Directory, type IdentityAlert, type Contact } from './directory.ts';
export { HttpApi } from './http.ts';
export { checkPasswordPolicy } from './password-policy.ts';
export { MemoryStore, type KeyValueStore, type Platform, type SocketLike } from './platform.ts';
export { Transport, type ConnectionStatus } from './transport.ts';
export { UmbraError, type ErrorCode, formatSafetyNumber } from '../../shared/index.ts';
