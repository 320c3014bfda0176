/**
 * When an HTTP exchange (one request and its response) is over: its response closed
 * (sent in full, or cut off) or its client's socket did. The socket must be watched too:
 * a pipelined request's response waits in a queue, detached from the socket, and never
 * emits 'close' when the client leaves (Node 20), so a route or a shutdown waiting for
 * it would wait for the keep-alive timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Callbacks waiting for each socket's 'close': one listener per socket, however many
 * requests are pipelined on it (a listener per request trips Node's leak warning at 11).
 */
const socketWatchers = new WeakMap<Socket, Set<() => void>>();

function watchSocket(socket: Socket, fn: () => void): () => void {
  let watchers = socketWatchers.get(socket);
  if (watchers === undefined) {
    const set = (watchers = new Set());
    socketWatchers.set(socket, set);
    socket.once('close', () => {
      socketWatchers.delete(socket);
      for (const watcher of [...set]) watcher();
    });
  }
  watchers.add(fn);
  const own = watchers;
  return () => own.delete(fn);
}

/**
 * Runs `fn` once, when the exchange of `request` and `response` is over (see the module
 * comment); at once (synchronously) if it already is.
 * @returns a function that stops watching (`fn` then never runs).
 */
export function whenGone(request: IncomingMessage, response: ServerResponse, fn: () => void): () => void {
  let fired = false;
  // A flag, not only removal: the socket's 'close' emits the response's, and an emitter
  // still calls the listeners it had when the emit began.
  const once = (): void => {
    if (fired) return;
    fired = true;
    stop();
    fn();
  };
  const unwatchSocket = watchSocket(request.socket, once);
  const stop = (): void => {
    response.off('close', once);
    unwatchSocket();
  };
  response.once('close', once);
  if (isGone(request, response)) once();
  return stop;
}

/** Whether the exchange is over: its response or its client's socket closed. */
export function isGone(request: IncomingMessage, response: ServerResponse): boolean {
  return response.destroyed || request.socket.destroyed;
}
