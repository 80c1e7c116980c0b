/**
 * Where the cats' events go on NATS: the JetStream stream, the subject prefix and the connection, from the same
 * variables as `NatsRelay.layerConfig` (`NATS_URL`, `EVENTLY_NATS_STREAM`, `EVENTLY_NATS_PREFIX`).
 */
import { NatsClient, NatsRelay } from "@evently/nats"
import * as Effect from "effect/Effect"

/** The JetStream stream (default `EVENTLY`) and subject prefix (default `evently`) the relay and consumer share. */
export const settings = Effect.map(NatsRelay.config, ({ stream, prefix }) => ({
  stream,
  prefix: prefix ?? "evently"
}))

/** The NATS connection: `NATS_URL`, default `nats://127.0.0.1:4222`. */
export const layer = NatsClient.layerConfig({ name: "cats" })
