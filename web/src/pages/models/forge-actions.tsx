import { useState } from "preact/hooks";
import { readNumber, useLoraFields } from "./lora-fields.js";
import { parseTrainingRecords } from "./training-records.js";
import { startFinetune, startQuantize, type JobRecord } from "./models-api.js";

/**
 * The types a forge quantize job takes without an importance matrix: the ladder of
 * src/forge/quantize/quantize-types.ts (QUANTIZE_TYPES), highest precision first.
 */
const QUANTIZE_TYPES = ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0", "Q3_K_M", "Q2_K", "F16"] as const;

/** Props of the forms: the model the job starts from, and what to do with the job it started. */
interface ActionProps {
  model: string;
  onStarted(job: JobRecord): void;
}

/** Runs `start`, showing its error (the server's message, or the form's) instead of throwing. */
function useSubmit(): { error: string | undefined; busy: boolean; submit(start: () => Promise<void>): Promise<void> } {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (start: () => Promise<void>) => {
    setError(undefined);
    setBusy(true);
    try {
      await start();
    } catch (caught) {
      setError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, submit };
}

/** An optional new name; blank means none. */
const optionalName = (name: string): { name?: string } => (name.trim() === "" ? {} : { name: name.trim() });

/** Quantize: a type and an optional name for the fork. */
export function QuantizeForm({ model, onStarted }: ActionProps) {
  const [type, setType] = useState<string>("Q4_0");
  const [name, setName] = useState("");
  const { error, busy, submit } = useSubmit();
  const onSubmit = (event: Event) => {
    event.preventDefault();
    void submit(async () => {
      onStarted(await startQuantize({ model, type, ...optionalName(name) }));
      setName(""); // the name is taken now; a second job needs another
    });
  };
  return (
    <form class="inline forge-form" aria-labelledby="quantize-heading" onSubmit={onSubmit} noValidate>
      <h3 id="quantize-heading">Quantize</h3>
      <label>Type
        <select value={type} onChange={(event) => setType(event.currentTarget.value)}>
          {QUANTIZE_TYPES.map((option) => <option key={option} value={option}>{option}</option>)}
        </select>
      </label>
      <label>New name (optional)
        <input value={name} placeholder="family:tag" onInput={(event) => setName(event.currentTarget.value)} />
      </label>
      <button type="submit" disabled={busy}>Quantize</button>
      {error && <p role="alert" class="error form-error">{error}</p>}
    </form>
  );
}

const EXAMPLE_RECORDS = `{"text": "The grove stood at the edge of the valley."}\n{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}`;

/** Whether the JSONL holds a chat record (a "messages" key), for which the loss can be on answers only. */
const hasChatRecords = (jsonl: string): boolean => /"messages"\s*:/.test(jsonl);

/**
 * Fine-tune: JSONL records inline, epochs, learning rate, an optional name, LoRA with its
 * hyperparameters, and — for chat records — whether the loss counts the answers only.
 */
export function FinetuneForm({ model, onStarted }: ActionProps) {
  const [records, setRecords] = useState("");
  const [epochs, setEpochs] = useState("2");
  const [learningRate, setLearningRate] = useState("");
  const [name, setName] = useState("");
  const [answersOnly, setAnswersOnly] = useState(true);
  const lora = useLoraFields();
  const { error, busy, submit } = useSubmit();
  const chat = hasChatRecords(records);
  const onSubmit = (event: Event) => {
    event.preventDefault();
    void submit(async () => {
      const parsed = parseTrainingRecords(records);
      const epochCount = readNumber(epochs, (value) => Number.isInteger(value) && value >= 1 && value <= 10_000, "Epochs must be a whole number from 1 to 10000");
      const rate = readNumber(learningRate, (value) => value > 0 && value <= 1, "The learning rate must be a number above 0 and at most 1, e.g. 0.0001");
      const adapter = lora.read();
      onStarted(await startFinetune({
        model,
        records: parsed,
        ...(epochCount === undefined ? {} : { epochs: epochCount }),
        ...(rate === undefined ? {} : { learning_rate: rate }),
        ...(chat ? { loss_on: answersOnly ? "answers" : "all" } : {}),
        ...(adapter === undefined ? {} : { lora: adapter }),
        ...optionalName(name),
      }));
    });
  };
  return (
    <form class="forge-form finetune" aria-labelledby="finetune-heading" onSubmit={onSubmit} noValidate>
      <h3 id="finetune-heading">Fine-tune</h3>
      <label class="field records">Training records (JSONL: one {'{"text"}'} or {'{"messages"}'} object a line)
        <textarea rows={5} value={records} placeholder={EXAMPLE_RECORDS} spellcheck={false} onInput={(event) => setRecords(event.currentTarget.value)} />
      </label>
      <div class="inline-fields">
        <label class="field">Epochs
          <input inputMode="numeric" value={epochs} onInput={(event) => setEpochs(event.currentTarget.value)} />
        </label>
        <label class="field">Learning rate (optional)
          <input inputMode="decimal" value={learningRate} placeholder="default" onInput={(event) => setLearningRate(event.currentTarget.value)} />
        </label>
        <label class="field">New name (optional)
          <input value={name} placeholder="family:tag" onInput={(event) => setName(event.currentTarget.value)} />
        </label>
      </div>
      {chat && (
        <label class="check">
          <input type="checkbox" checked={answersOnly} onChange={(event) => setAnswersOnly(event.currentTarget.checked)} />
          Loss on answers only: chat records train on the assistant's replies, not on the questions
        </label>
      )}
      {lora.fields}
      <div>
        <button type="submit" disabled={busy}>Fine-tune</button>
      </div>
      {error && <p role="alert" class="error form-error">{error}</p>}
    </form>
  );
}
