import { EventStore } from "@evently/store"
import { EventStoreContract } from "@evently/testing"

EventStoreContract.suite("EventStore.layerMemory", EventStore.layerMemory)
