"""TransferWorkerFunction: SQS FIFO transfer queue → QuickBooks (partial batch failures reported)."""

from qbsync.entrypoints import transfer_queue_handler

handler = transfer_queue_handler()
