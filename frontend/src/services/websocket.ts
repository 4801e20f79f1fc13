/**
 * The `/ws` connection: one socket per tab, reference-counted subscriptions that are
 * replayed after every reconnect, exponential backoff, connection state in the store, and
 * the client's business-event log (only `arbitrage_triggered`, `arbitrage_result`,
 * `connection_change` — never technical noise).
 */

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "unauthorized" | "closed";

export interface PriceUpdate {
  exchange: string;
  symbol: string;
  type?: string;
  bid: string | number;
  ask: string | number;
  ts: number;
  venue?: string;
}
export interface OpportunityEvent { pairId: string; spread: number; spreadPercent: number; ts: number }
export interface OrderSubmittedEvent { exchange: string; orderId: string; symbol: string; side: string; qty: number; ts: number; pairId?: string }
export interface OrderFilledEvent { exchange: string; orderId: string; price: number | string; qty: number; ts: number; pairId?: string; paper?: boolean }
export interface OrderFailedEvent { exchange: string; orderId: string; code: string; message: string; ts: number; pairId?: string }
export interface TwapProgressEvent {
  planId: string;
  executed: number;
  remaining: number;
  slicesDone: number;
  slicesTotal: number;
  state: string;
  /** Server extension: when the last slice executed (absent from the contract's minimum). */
  lastExecutionTs?: number | null;
  ts: number;
}
export interface EngineAlertEvent { severity: "info" | "warning" | "error" | "critical" | string; code: string; message: string; pairId?: string; ts: number }

export interface ServerEventMap {
  price_update: PriceUpdate;
  opportunity: OpportunityEvent;
  order_submitted: OrderSubmittedEvent;
  order_filled: OrderFilledEvent;
  order_failed: OrderFailedEvent;
  twap_progress: TwapProgressEvent;
  engine_alert: EngineAlertEvent;
  subscribed: Record<string, unknown>;
  unsubscribed: Record<string, unknown>;
  pong: Record<string, unknown>;
  error: { code?: string; message?: string };
}
export type ServerEventName = keyof ServerEventMap;
export type ServerMessage = { [K in ServerEventName]: { event: K; data: ServerEventMap[K] } }[ServerEventName];

export type ClientEventName = "arbitrage_triggered" | "arbitrage_result" | "connection_change";

/** What a caller wants to hear about; keys mirror the server's subscribe message. */
export interface Subscription {
  exchanges?: string[];
  symbols?: string[];
  pairs?: string[];
  plans?: string[];
}
const TOPIC_KINDS = ["exchanges", "symbols", "pairs", "plans"] as const;
type TopicKind = (typeof TOPIC_KINDS)[number];

/** The subset of the browser WebSocket we use; tests pass a fake with the same shape. */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: Event) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
}
export type SocketFactory = new (url: string) => SocketLike;

export interface WsClientOptions {
  url?: string;
  WebSocketImpl?: SocketFactory;
  baseDelayMs?: number;
  maxDelayMs?: number;
  pingIntervalMs?: number;
  random?: () => number;
  onStateChange?: (state: ConnectionState, info: { attempt: number }) => void;
}

const OPEN = 1;
const UNAUTHORIZED_CLOSE = 4401;
const MAX_QUEUED_CLIENT_EVENTS = 20;

export function defaultWsUrl(): string {
  if (typeof window === "undefined") return "ws://127.0.0.1:8000/ws";
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/ws`;
}

/** Key used for symbol subscriptions and the live price cache: `binance:spot:BTCUSDT`. */
export function symbolKey(exchange: string, type: string | undefined, symbol: string): string {
  return `${exchange}:${type ?? "spot"}:${symbol}`;
}

type Listener = (message: ServerMessage) => void;

export class WsClient {
  private socket: SocketLike | null = null;
  private wanted = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private readonly counts: Record<TopicKind, Map<string, number>> = {
    exchanges: new Map(),
    symbols: new Map(),
    pairs: new Map(),
    plans: new Map(),
  };
  private readonly listeners = new Set<Listener>();
  private readonly queue: string[] = [];
  private lostAt: number | null = null;
  private everOpened = false;
  state: ConnectionState = "idle";

  constructor(private readonly options: WsClientOptions = {}) {}

  /** Start (or keep) a connection; safe to call repeatedly. */
  connect(): void {
    this.wanted = true;
    if (this.socket || this.retryTimer) return;
    this.open();
  }

  /** Close for good (logout); subscriptions are kept so a later connect() restores them. */
  disconnect(): void {
    this.wanted = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.onerror = null;
      socket.onopen = null;
      socket.close(1000, "client disconnect");
    }
    this.setState("closed");
  }

  /** Listen to every server message; returns the unsubscribe function. */
  addListener(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reference-counted subscribe; returns the release function. */
  subscribe(sub: Subscription): () => void {
    const added: Subscription = {};
    for (const kind of TOPIC_KINDS) {
      for (const topic of sub[kind] ?? []) {
        const n = this.counts[kind].get(topic) ?? 0;
        this.counts[kind].set(topic, n + 1);
        if (n === 0) (added[kind] ??= []).push(topic);
      }
    }
    if (hasTopics(added)) this.sendNow({ action: "subscribe", ...added });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const removed: Subscription = {};
      for (const kind of TOPIC_KINDS) {
        for (const topic of sub[kind] ?? []) {
          const n = this.counts[kind].get(topic) ?? 0;
          if (n <= 1) {
            this.counts[kind].delete(topic);
            if (n === 1) (removed[kind] ??= []).push(topic);
          } else {
            this.counts[kind].set(topic, n - 1);
          }
        }
      }
      if (hasTopics(removed)) this.sendNow({ action: "unsubscribe", ...removed });
    };
  }

  /** Everything currently subscribed, as one subscribe message body. */
  activeSubscription(): Subscription {
    const sub: Subscription = {};
    for (const kind of TOPIC_KINDS) {
      const topics = [...this.counts[kind].keys()];
      if (topics.length) sub[kind] = topics;
    }
    return sub;
  }

  /** The business-event log; queued briefly while disconnected so a result is not lost. */
  sendClientEvent(event: ClientEventName, data: Record<string, unknown>): void {
    const payload = JSON.stringify({ action: "client_event", event, data });
    if (this.socket && this.socket.readyState === OPEN) {
      this.socket.send(payload);
    } else {
      this.queue.push(payload);
      if (this.queue.length > MAX_QUEUED_CLIENT_EVENTS) this.queue.shift();
    }
  }

  private open(): void {
    const Impl = this.options.WebSocketImpl ?? (globalThis.WebSocket as unknown as SocketFactory | undefined);
    if (!Impl) {
      this.setState("closed");
      return;
    }
    this.setState(this.everOpened || this.attempt > 0 ? "reconnecting" : "connecting");
    const socket = new Impl(this.options.url ?? defaultWsUrl());
    this.socket = socket;
    socket.onopen = () => this.handleOpen();
    socket.onmessage = (ev) => this.handleMessage(ev);
    socket.onclose = (ev) => this.handleClose(ev);
    socket.onerror = () => {
      // onclose follows and decides what to do.
    };
  }

  private handleOpen(): void {
    const reconnect = this.everOpened;
    const downtimeMs = this.lostAt === null ? 0 : Date.now() - this.lostAt;
    this.attempt = 0;
    this.everOpened = true;
    this.lostAt = null;
    this.setState("open");
    const sub = this.activeSubscription();
    if (hasTopics(sub)) this.sendNow({ action: "subscribe", ...sub });
    this.sendClientEvent("connection_change", { state: "connected", reconnect, downtimeMs });
    while (this.queue.length && this.socket?.readyState === OPEN) this.socket.send(this.queue.shift() as string);
    const every = this.options.pingIntervalMs ?? 25_000;
    if (every > 0) this.pingTimer = setInterval(() => this.sendNow({ action: "ping" }), every);
  }

  private handleMessage(ev: MessageEvent): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(String(ev.data)) as ServerMessage;
    } catch {
      return;
    }
    if (!message || typeof message.event !== "string") return;
    for (const listener of [...this.listeners]) {
      try {
        listener(message);
      } catch (exc) {
        console.error("websocket listener failed", exc);
      }
    }
  }

  private handleClose(ev: CloseEvent): void {
    this.socket = null;
    this.clearTimers();
    if (this.lostAt === null) this.lostAt = Date.now();
    if (ev.code === UNAUTHORIZED_CLOSE) {
      this.wanted = false;
      this.setState("unauthorized");
      return;
    }
    if (!this.wanted) {
      this.setState("closed");
      return;
    }
    const base = this.options.baseDelayMs ?? 500;
    const max = this.options.maxDelayMs ?? 15_000;
    const delay = Math.min(max, base * 2 ** this.attempt);
    const jitter = delay * 0.2 * (this.options.random ?? Math.random)();
    this.attempt += 1;
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.wanted) this.open();
    }, delay + jitter);
  }

  private sendNow(message: Record<string, unknown>): void {
    if (this.socket && this.socket.readyState === OPEN) this.socket.send(JSON.stringify(message));
    // Otherwise nothing to do: handleOpen replays the whole subscription.
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    this.options.onStateChange?.(state, { attempt: this.attempt });
  }
}

function hasTopics(sub: Subscription): boolean {
  return TOPIC_KINDS.some((kind) => (sub[kind]?.length ?? 0) > 0);
}
