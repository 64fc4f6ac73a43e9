"""Search over stored entries: one tokenizer for index and query, a derived tantivy index."""
