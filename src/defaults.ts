/**
 * Every IPC default and limit in one place. Each layer (channel, handshake, server, client)
 * reads its defaults from here, so a ring size or a message limit cannot disagree between two
 * files again. Values that are part of the wire protocol say so; the rest are local policy.
 * @packageDocumentation
 */

// ───────────────────────────── rings and messages ─────────────────────────────

/** Ring capacity per direction per connection, bytes (a power of two). */
export const DEFAULT_RING_CAPACITY = 1 << 20;
/** Smallest ring capacity the transport accepts (wire rule, `docs/PROTOCOL.md` §2). */
export const MIN_RING_CAPACITY = 4 << 10;
/** Largest ring capacity the transport accepts (wire rule). */
export const MAX_RING_CAPACITY = 1 << 30;
/** Largest message (whole data frame) either side may send, bytes. Server and channel agree. */
export const DEFAULT_MAX_MESSAGE = 16 << 20;
/**
 * A client's own cap on incoming messages, bytes (the smaller of it and WELCOME's max_message
 * applies), so a server announcing up to 4 GiB cannot make the client reassemble that much.
 * Same as the Rust client.
 */
export const DEFAULT_MAX_INCOMING_MESSAGE = 64 << 20;
/**
 * A client's queued sends (waiting for room in the ring) are bounded at the larger of this
 * many ring capacities and {@link DEFAULT_CLIENT_MAX_QUEUED_BYTES} (a burst of pipelined calls
 * through a small ring stays legal); past it a call fails locally with SEND_QUEUE_FULL. A send
 * into an empty queue is always taken, whatever its size. Option `maxQueuedBytes` overrides.
 */
export const CLIENT_QUEUED_RINGS = 4;
/** See {@link CLIENT_QUEUED_RINGS}. */
export const DEFAULT_CLIENT_MAX_QUEUED_BYTES = 64 << 20;
/** Largest `maxMessage` an option may ask for: WELCOME carries it as a u32. */
export const MAX_MAX_MESSAGE = 0xffff_ffff;

// ───────────────────────────── server limits ─────────────────────────────

/** Most open sessions per server. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** Most concurrent streams per connection (`TOO_MANY_STREAMS` past it). */
export const DEFAULT_MAX_STREAMS = 64;
/** Most calls (requests and streams) in flight per connection (`TOO_MANY_REQUESTS` past it). */
export const DEFAULT_MAX_IN_FLIGHT = 1024;
/**
 * Payload bytes the calls in flight of one connection may hold while their handlers run
 * (`TOO_MANY_REQUESTS` past it), in messages of `maxMessage` bytes: 64 MiB at the defaults.
 * A multiple of `maxMessage`, so raising that does not make large calls unservable.
 */
export const DEFAULT_IN_FLIGHT_MESSAGES = 4;
/** The same for all connections of a server together (512 MiB at the defaults), so many connections cannot add up to all memory. */
export const DEFAULT_IN_FLIGHT_BUDGET_MESSAGES = 32;
/** From accept to READY, ms (REJECT 5 past it). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2000;
/** Close sessions with no incoming data frame for this long, ms; 0 = off. */
export const DEFAULT_IDLE_TIMEOUT_MS = 0;
/** How long calls in flight may take to finish after GOAWAY, ms. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 5000;
/** Process-wide budget for fragment-reassembly memory, bytes (PLAN §10). */
export const DEFAULT_REASSEMBLY_BUDGET = 256 << 20;

/**
 * Backpressure (PLAN §8): a session whose queued outgoing bytes pass this many ring capacities
 * stops having its requests read ...
 */
export const BACKLOG_PAUSE_RINGS = 4;
/** ... until the backlog is below this many ring capacities. */
export const BACKLOG_RESUME_RINGS = 1;

/**
 * Channel fd sets (2 memfd rings + a doorbell socketpair, 4 fds) a listening server keeps made
 * ahead, so a handshake does not create them on its critical path. Small and fixed: an idle
 * server holds this many sets, never more.
 */
export const CHANNEL_FD_POOL_SIZE = 2;

/** First pause of the accept loop after EMFILE/ENFILE, ms; doubled per failure up to the max. */
export const ACCEPT_BACKOFF_MS = 100;
/** Longest pause of the accept loop, ms. */
export const ACCEPT_BACKOFF_MAX_MS = 2000;
/**
 * Connections the server accepts in one event-loop turn; the rest wait for the next turn, so a
 * connect flood cannot starve sessions and timers (review R5).
 */
export const ACCEPTS_PER_TURN = 64;

// ───────────────────────────── control socket ─────────────────────────────

/** Fds a WELCOME carries: ring s→c, ring c→s, the client's doorbell end (protocol v2). */
export const WELCOME_FDS = 3;
/** Fds a control-socket read makes room for (more than that is malformed; PLAN §2). */
export const MAX_CONTROL_FDS = 8;
/**
 * `sun_path` of a Unix socket address holds 108 bytes including the terminating NUL, so a
 * path of at most 107 bytes fits (Linux).
 */
export const MAX_SOCKET_PATH_BYTES = 107;

// ───────────────────────────── client ─────────────────────────────

/** Per-stream flow-control window a client grants by default (PLAN §3). */
export const DEFAULT_STREAM_WINDOW: Readonly<StreamWindow> = Object.freeze({ chunks: 256, bytes: 4 << 20 });
/** Window sums are clamped to this (PLAN §3). */
export const MAX_STREAM_WINDOW = 2 ** 31;
/** First reconnect delay, ms. */
export const DEFAULT_RECONNECT_INITIAL_DELAY_MS = 50;
/** Largest reconnect delay, ms. */
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 5000;

/**
 * A stream's flow-control window: chunks and payload bytes the server may send before more credit.
 * @category IPC
 */
export interface StreamWindow {
  /** Chunks, at least 1. */
  chunks: number;
  /** Payload bytes, at least 1. */
  bytes: number;
}

// ───────────────────────────── transport (owned by core-transport) ─────────────────────────────

/** Polling window of the `adaptive` idle mode: how long a side polls without work before it parks, µs. */
export const DEFAULT_SPIN_MICROS = 200;
/**
 * How long the scheduler busy-waits inside one event-loop turn for a polling channel's next
 * message before it lets the loop run again (timers, sockets, other callbacks), µs. A loop turn
 * (an `epoll_wait` and an immediate) costs a few µs, more than a peer's reply takes to arrive;
 * waiting in the turn finds it within ~0.1 µs, and returns at once so that promise
 * continuations run. It bounds what polling adds to the loop's latency for other work.
 */
export const POLL_SLICE_MICROS = 50;
/** Messages a channel delivers per scheduler step, at most (PLAN §9: one poll's worth). */
export const TURN_MESSAGES = 256;
/** Handler time after which a channel's step stops delivering and lets other channels run, ms (PLAN §9). */
export const TURN_MS = 1;
/** Messages buffered for a channel's async iterator before reading pauses. */
export const DEFAULT_HIGH_WATER_MARK = 1024;
/**
 * How long a side that is half-way through sending a fragmented message keeps polling for the
 * reader's release before it parks on its doorbell, ms (not in `sleep` mode): a message larger
 * than the ring is handed over a ring at a time, and a wake-up per hand-over costs more than
 * the copy.
 */
export const MID_MESSAGE_SPIN_MS = 2;
