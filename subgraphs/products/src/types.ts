/** What an inventoryChanged event resolves from: one InventoryChanged. */
export interface InventoryUpdatePayload {
  productId: string;
  stock: number;
  delta: number;
  sequence: number;
  cursor: string;
  occurredAt: Date;
}
