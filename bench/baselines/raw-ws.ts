// Baseline 1: the simplest possible room relay. A client joins the room named in its URL
// (`/ws?room=<n>`); each binary frame it sends goes to every member of that room, itself included
// (its own copy stands in for Umbra's ack). No auth, no parsing, no storage.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface Baseline {
  port: number;
  close(): Promise<void>;
}

/** `onFrame` runs before a frame is forwarded (ws-sqlite stores it there). */
export async function startRawWs(port = 0, onFrame?: (room: string, data: Buffer) => void): Promise<Baseline> {
  const rooms = new Map<string, Set<WebSocket>>();
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const all = new Set<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://relay');
    const room = url.searchParams.get('room');
    if (url.pathname !== '/ws' || !room) return void socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    wss.handleUpgrade(req, socket, head, (ws) => {
      let members = rooms.get(room);
      if (!members) rooms.set(room, (members = new Set()));
      members.add(ws);
      all.add(ws);
      ws.on('message', (data, isBinary) => {
        if (!isBinary) return;
        const frame = data as Buffer;
        onFrame?.(room, frame);
        for (const m of members) m.send(frame);
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        members.delete(ws);
        all.delete(ws);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const ws of all) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
