/**
 * Option checking for the IPC classes. Every option is validated when the object is made, with
 * a typed `INVALID_ARGUMENT` error naming the option, so that a bad `ringCapacity` fails
 * `new IpcServer()` instead of every handshake at run time (as undici checks its options).
 * @packageDocumentation
 */
import { MAX_RING_CAPACITY, MAX_STREAM_WINDOW, MIN_RING_CAPACITY } from '../defaults';
import type { StreamWindow } from '../defaults';
import { IpcError } from '../errors';
import { FRAME_HEADER } from '../protocol/frame';

function invalid(name: string, want: string, got: unknown): IpcError {
  const shown = typeof got === 'bigint' ? `${got}n` : typeof got === 'string' ? JSON.stringify(got) : String(got);
  return new IpcError('INVALID_ARGUMENT', `option ${name} must be ${want}, got ${shown}`, { details: { option: name } });
}

/** An integer in [min, max], or `fallback` when undefined. */
export function intOption(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** A ring capacity: a power of two from 4 KiB to 1 GiB. */
export function ringCapacityOption(name: string, value: unknown, fallback: number): number {
  const v = intOption(name, value, fallback, MIN_RING_CAPACITY, MAX_RING_CAPACITY);
  if ((v & (v - 1)) !== 0) throw invalid(name, `a power of two from ${MIN_RING_CAPACITY} to ${MAX_RING_CAPACITY}`, value);
  return v;
}

/** A largest-message size: at least a frame header, at most u32. */
export function maxMessageOption(name: string, value: unknown, fallback: number): number {
  return intOption(name, value, fallback, FRAME_HEADER + 1, 0xffff_ffff);
}

/** A boolean, or `fallback`. */
export function boolOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(name, 'a boolean', value);
  return value;
}

/** One of `allowed`, or `fallback`. */
export function enumOption<T extends string>(name: string, value: unknown, fallback: T, allowed: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) throw invalid(name, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

/** A non-empty string, or `fallback`. */
export function stringOption(name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw invalid(name, 'a non-empty string', value);
  return value;
}

/** A list of uids. */
export function uidsOption(name: string, value: unknown, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0) throw invalid(name, 'a non-empty array of uids', value);
  return value.map((u, i) => intOption(`${name}[${i}]`, u, 0, 0, 0xffff_ffff));
}

/** A stream window: `{chunks, bytes}`, each from 1 to 2^31; missing fields from `fallback`. */
export function streamWindowOption(name: string, value: unknown, fallback: StreamWindow): StreamWindow {
  if (value === undefined) return fallback;
  if (!value || typeof value !== 'object') throw invalid(name, 'an object {chunks, bytes}', value);
  const w = value as Partial<StreamWindow>;
  return {
    chunks: intOption(`${name}.chunks`, w.chunks, fallback.chunks, 1, MAX_STREAM_WINDOW),
    bytes: intOption(`${name}.bytes`, w.bytes, fallback.bytes, 1, MAX_STREAM_WINDOW),
  };
}

/**
 * How a server's or client's channels poll and sleep (passed through to each channel).
 * @category IPC
 */
export interface ChannelTuning {
  /** `adaptive` (default: poll while messages flow, then sleep), `poll` (never sleep) or `sleep`. */
  idle?: 'adaptive' | 'poll' | 'sleep';
  /** Polling window of `adaptive`, µs. Default 200. */
  spinMicros?: number;
  /** How a sleeping side is woken: `uv` (default) or `thread`. */
  wake?: 'uv' | 'thread';
  /** Read and write the rings in place (default true; false forces the copying path). */
  zeroCopy?: boolean;
}

/** Checks the channel tuning options. */
export function channelTuningOption(name: string, value: unknown): ChannelTuning {
  if (value === undefined) return {};
  if (!value || typeof value !== 'object') throw invalid(name, 'an object', value);
  const c = value as ChannelTuning;
  const out: ChannelTuning = {};
  if (c.idle !== undefined)
    out.idle = enumOption<'adaptive' | 'poll' | 'sleep'>(`${name}.idle`, c.idle, 'adaptive', ['adaptive', 'poll', 'sleep']);
  if (c.spinMicros !== undefined) out.spinMicros = intOption(`${name}.spinMicros`, c.spinMicros, 0, 0, 10_000_000);
  if (c.wake !== undefined) out.wake = enumOption<'uv' | 'thread'>(`${name}.wake`, c.wake, 'uv', ['uv', 'thread']);
  if (c.zeroCopy !== undefined) out.zeroCopy = boolOption(`${name}.zeroCopy`, c.zeroCopy, true);
  return out;
}
