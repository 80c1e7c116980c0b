/**
 * @since 0.1.0
 */
export * as Envelope from "./Envelope.ts"
export * as JetStreamStream from "./JetStreamStream.ts"
export * as NatsClient from "./NatsClient.ts"
export * as NatsConsumer from "./NatsConsumer.ts"
export * as NatsRelay from "./NatsRelay.ts"
export * as Subjects from "./Subjects.ts"
