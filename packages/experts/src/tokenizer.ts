// Tokenizers sit behind one interface so a SentencePiece/Gemma tokenizer can replace the
// byte-level one used by `tiny` and `small`. Id 0 is padding, 1 begins a prompt, bytes are 2..257.

export interface Tokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  encode(text: string): number[];
}

export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 258;
  readonly padId = 0;
  encode(text: string): number[] {
    return [1, ...Array.from(new TextEncoder().encode(text), (b) => b + 2)];
  }
}

/**
 * Right-padded, truncated prompt ids.
 * @returns ids int32 [B*maxLen], mask (1 = real) [B*maxLen]
 */
export function tokenizeBatch(
  tokenizer: Tokenizer,
  texts: readonly string[],
  maxLen: number,
): { ids: Int32Array; mask: Uint8Array } {
  const ids = new Int32Array(texts.length * maxLen).fill(tokenizer.padId);
  const mask = new Uint8Array(texts.length * maxLen);
  texts.forEach((text, b) => {
    const tokens = tokenizer.encode(text).slice(0, maxLen);
    ids.set(tokens, b * maxLen);
    mask.fill(1, b * maxLen, b * maxLen + tokens.length);
  });
  return { ids, mask };
}
