-- AlterTable: the trace context of the operation that wrote each event, so its consumers continue that trace.
ALTER TABLE "outbox" ADD COLUMN "trace_parent" TEXT;
