/** A LiveSocket for as long as the component that asked for it lives, its state as a signal. */
import { createSignal, onCleanup } from "solid-js";
import { token } from "../api/session.ts";
import { LiveSocket, liveUrl, type LiveState } from "./liveSocket.ts";

export function useLive(path: string, handlers: { onMessage: (m: unknown) => void; onOpen?: () => void }): () => LiveState {
  const [state, setState] = createSignal<LiveState>("connecting");
  const socket = new LiveSocket({
    url: () => { const t = token(); return t ? liveUrl(location.origin, path, t) : null; },
    onMessage: handlers.onMessage,
    ...(handlers.onOpen ? { onOpen: handlers.onOpen } : {}),
    onState: setState,
  });
  onCleanup(() => socket.close());
  return state;
}
