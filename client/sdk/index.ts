// The Umbra client SDK: everything a browser UI, a bot or a test needs to speak the protocol.
export { UmbraClient, type ClientOptions, type Progress, type ProgressCallback } from './client.ts';
export { Conversation, SecurityStats, type ChatMessage, type Notice, type RejectReason, type Rejection } from './conversation.ts';
export { Directory, type IdentityAlert, type Contact } from './directory.ts';
export { HttpApi } from './http.ts';
export { checkPasswordPolicy } from './password-policy.ts';
export { MemoryStore, type KeyValueStore, type Platform, type SocketLike } from './platform.ts';
export { Transport, type ConnectionStatus } from './transport.ts';
export { UmbraError, type ErrorCode, formatSafetyNumber } from '../../shared/index.ts';
