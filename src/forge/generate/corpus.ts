/**
 * The English text Grove learns its generated models' byte-level BPE merges from: original
 * prose, dialogue, notes, lists and code-like lines written for Grove (no third-party text),
 * so that common words, numbers and punctuation become single tokens. Changing a single
 * character changes every generated model's vocabulary, and so their digests.
 */
export const CORPUS: string = [
  `The grove stood at the edge of the valley, where the river turned east and the road gave up
and became a path. Nobody remembered who had planted the first trees. Some said a miller had
set them out in rows to shade his yard; others said the birds had done it, one seed at a time,
over a hundred years. What everyone agreed on was that the grove had grown by itself after
that, and that it was older than the village, older than the bridge, and older than the
stories people told about it.`,

  `In the spring the ground under the trees turned green before anywhere else. The children
came after school to look for the first flowers, and the old men came in the evening to sit on
the bench by the water and talk about the weather. They talked about the weather the way other
people talk about money: carefully, with numbers, and with a certain suspicion that someone
was keeping the best of it for themselves.`,

  `"It rained twelve days in April," said Tomas, who kept a notebook. "Twelve. I wrote them down."
"That is not so many," said his brother. "In the year the bridge washed out it rained for three
weeks without stopping."
"That was May."
"It was April. I remember, because the school was closed and we went fishing."
"You went fishing because you never went to school."
They both laughed, and for a while neither of them said anything, and the river went on past
them the way it always did, brown and patient and in no hurry at all.`,

  `A model is a file. That is the first thing to understand, and the thing people most often
forget. It has a name, a size and a digest, and it can be copied, moved, compared and deleted
like any other file. What makes it special is what happens when a program loads it: the
numbers inside become a machine that reads text and writes more text. The same file can be
served by one program on a laptop and by another on a server with eight graphics cards, and it
will give the same answers if it is asked the same questions with the same settings.`,

  `When you fork a model, you make a new file from an old one. You might fine-tune it on your own
data, quantize it so that it fits in less memory, or merge it with another model that is good
at something else. Each fork has a parent, and each parent may have many children. Draw them
all on a page and you get a tree: a base model at the root, and its descendants spreading out
in every direction. Keep the recipe for each branch, and anyone can grow the same tree again.`,

  `Measure before you choose. A smaller model answers faster and costs less, but it makes more
mistakes. A larger model is slower and more expensive, but it might get the answer right the
first time, which can be cheaper in the end. The only honest way to decide is to try both on
the work you actually need done, count the errors, time the answers, and write the numbers
down. Opinions are free; measurements are what you can build on.`,

  `Dear Marta,
Thank you for the seeds. I planted them on Tuesday, in the long bed by the fence, and covered
them with a thin layer of sand the way you told me. It has been cold at night, so I put the old
window over them like a little greenhouse. If they come up, I will send you a photograph. If
they do not, I will blame the weather, as my grandfather did, and try again in May.
The apple tree is covered in blossoms this year. Last year it had almost none, and I was afraid
it was dying, but the man from the nursery said trees sometimes rest for a season, the same as
people do. I hope you are well, and that the new job is kind to you.
With love,
Anna`,

  `Q: How many tokens does a sentence have?
A: It depends on the tokenizer. A common English word is usually one token, a rare word may be
two or three, and a number like 1234567 may be split into several pieces. Punctuation marks are
often separate tokens, and so are spaces in some vocabularies.
Q: Why does it matter?
A: Because you pay for tokens, the context window is measured in tokens, and speed is reported
in tokens per second. If you compare two models with different tokenizers, compare the time to
process the same text, not the number of tokens.`,

  `Recipe for bread that forgives you:
1. Mix 500 g of flour, 10 g of salt and 7 g of dry yeast in a large bowl.
2. Add 350 ml of warm water and stir until no dry flour is left.
3. Cover the bowl and leave it for 2 hours, or in the fridge overnight.
4. Fold the dough a few times, shape it into a round loaf and let it rise for 45 minutes.
5. Bake at 230 degrees for 35 to 40 minutes, until the crust is deep brown.
6. Let it cool for at least an hour before you cut it. This is the hardest step.`,

  `The meeting started late, as meetings do. Priya had prepared three slides and a table of
results. "We ran each model on the same four hundred questions," she said. "The small one got
71 percent right and answered in 0.4 seconds on average. The medium one got 83 percent in 1.1
seconds. The large one got 86 percent, but it took 3.9 seconds, and it needs a machine that
costs four times as much per hour."
"So we pick the medium one," said Leon.
"For this task, yes. For the legal summaries, the large one was much better. We should test it
again next month, when the new quantized versions are ready."
"And if a new model comes out next week?"
"Then we run the same four hundred questions on it. That is the point of keeping them."`,

  `function average(values) {
  if (values.length === 0) return 0;
  let total = 0;
  for (const value of values) total += value;
  return total / values.length;
}

const scores = [71, 83, 86];
console.log("mean score:", average(scores));`,

  `def count_words(text):
    counts = {}
    for word in text.lower().split():
        word = word.strip(".,;:!?\\"'()")
        if word:
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])

if __name__ == "__main__":
    print(count_words("the cat and the dog and the bird"))`,

  `{
  "model": "grove-small",
  "messages": [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"}
  ],
  "temperature": 0.7,
  "max_tokens": 128,
  "stream": true
}`,

  `SELECT name, digest, size_bytes, created_at
FROM models
WHERE parent_digest IS NULL
ORDER BY created_at DESC
LIMIT 10;`,

  `The storm arrived after midnight. First the wind came through the grove, pulling at the
branches and throwing leaves against the windows, and then the rain, so heavy that it sounded
like gravel on the roof. In the morning the path was a stream and the bench by the river was
gone. Three trees had fallen, one of them across the road. The men from the village came with
saws and ropes, and by noon the road was open again. The wood was cut and stacked, and that
winter every house in the valley burned a little of the grove in its stove.`,

  `"Do you think it will grow back?" asked the girl.
"The trees that fell? No," said her grandmother. "But look there, where the big oak was. Now
the light reaches the ground. In two or three years you will see young trees there, dozens of
them, all trying to be the one that fills the gap. Most of them will not make it. One will."
"Which one?"
"Nobody knows. That is what makes it interesting."`,

  `Some rules for writing a good error message: say what went wrong, in words the reader knows.
Say which input caused it, by name. Say what the reader can do about it, if anything. Do not
blame the reader, and do not apologize for three lines before getting to the point. "The file
model.gguf is truncated: it ends at byte 1048576 but the last tensor needs 2097152 bytes" is a
good message. "An unexpected error occurred" is not a message at all; it is a shrug.`,

  `Monday: cleared the north corner, found two stones the size of a sheep.
Tuesday: rain. Repaired the shed door and sorted seeds by year.
Wednesday: planted beans (two rows), peas (one row), onions (forty sets).
Thursday: the neighbor's goat got in again and ate half a row of peas. Fixed the fence, again.
Friday: warm and dry. Watered everything. First radishes are up!
Saturday: market. Sold eggs, honey and three jars of plum jam; bought a new hoe.
Sunday: rest, mostly. Walked to the grove and back. Saw a heron by the river.`,

  `Numbers are everywhere once you start looking. The valley is 14 kilometers long and about 3
kilometers wide. The river drops 210 meters between the spring and the lake. The village has
612 people, 4 shops, 1 school and 2 churches, though only one of the churches has a priest. The
oldest tree in the grove is said to be 350 years old; the youngest was planted last year, on
the 21st of March, by a class of 19 children and 2 very patient teachers.`,

  `The server listens on port 8080 by default. Send it a request and it answers with a stream of
events, one per token, until the model stops or the limit is reached. If two people send
requests at the same time, they share the machine: each gets a slot, and the engine works on
both together, a few tokens at a time. If a hundred people arrive at once, most of them wait in
a queue, and the ones at the back are told politely to come back later.`,

  `"Why is the sky blue?" the boy asked, because he had just learned that questions could be
asked about anything.
"Because the air scatters blue light more than red light," said his father, who had read it
somewhere.
"Why does it do that?"
"Because blue light has a shorter wavelength."
"Why?"
"Because that is what blue is."
The boy thought about this for a long time. Then he asked why the grass was green, and his
father said they should go and ask his mother, who was a botanist and would enjoy it.`,

  `Checklist before a release:
- All tests pass on a clean machine, not only on yours.
- The version number is updated in every place it appears.
- The changelog says what changed, in words a user understands.
- Every new option has a default, a limit and a line in the documentation.
- Someone other than the author has tried the new feature by hand.
- You know how to roll back if something goes wrong, and you have tried it once.`,

  `There is a kind of patience that looks like laziness from the outside. The gardener who waits
a week before pruning, to see which branches the tree itself has given up on. The engineer who
reads the error log twice before changing any code. The teacher who lets a silence go on a
little longer than is comfortable, because someone at the back of the room is about to speak.
It is not that they are doing nothing. They are collecting information, and information is the
cheapest thing you will ever buy.`,

  `The library in the village was one room above the post office, open on Wednesdays and
Saturdays. It had about two thousand books, most of them donated, and a card catalogue that
nobody had updated since 1987. Mrs. Okafor, who ran it, knew where every book was anyway. "If
you want something about bees, it's on the third shelf by the window, next to the cookbooks,
because the man who gave us the bee books also gave us the cookbooks and I never had the heart
to separate them."`,

  `A small model can still be useful. It can sort mail into folders, pull dates and names out of
letters, answer questions about a manual it has been given, or turn a rough note into a tidy
paragraph. It will not write a novel or prove a theorem, but most work is not novels and
theorems. Most work is ordinary, repetitive and specific, and for that kind of work a small
model that you have tuned on your own examples is often better than a large one that you have
not.`,

  `User: Can you summarize this paragraph in one sentence?
Assistant: Sure. Please paste the paragraph, and tell me who the summary is for, so I can pick
the right words.
User: It's for my manager. She has about ten seconds.
Assistant: Then I'll keep it under twenty words and put the decision first.
User: Perfect, thank you!
Assistant: You're welcome. Here it is: "We recommend the medium model; it is accurate enough
and costs a third of the large one."`,

  `The bridge was rebuilt in stone the year after the flood. The engineer who designed it came
from the city with a case full of drawings and a hat that blew into the river on his first day.
He measured the banks, tested the soil, and spent a whole week watching the water at different
times of day. When people asked him why, he said, "A bridge is an argument with a river. I want
to know what the river is going to say before I start."`,

  `export interface Options {
  /** Number of threads to use; defaults to the number of cores. */
  threads?: number;
  /** Maximum number of tokens to generate. */
  maxTokens?: number;
}

export async function run(options: Options = {}): Promise<void> {
  const threads = options.threads ?? 4;
  const maxTokens = Math.min(options.maxTokens ?? 256, 4096);
  await start({ threads, maxTokens });
}`,

  `Autumn came early that year. By the middle of September the leaves had started to turn, first
the birches, pale yellow, then the maples, red and orange, and last the oaks, which went brown
and held on to their leaves until the snow came. People drove out from the town on Sundays to
walk in the grove and take photographs. They parked their cars along the road, left their
litter on the bench, and went home saying how peaceful it had been.`,

  `"I don't understand why you keep all those old notebooks," said Lena.
"Because I'd like to know what I thought, back then," said her aunt. "Not what I remember
thinking. Those aren't the same."
"Are they very different?"
"Sometimes. I was sure, in 1994, that we would all have flying cars by now. I was also sure
that I'd never learn to like olives. I was wrong about both."
"You like olives?"
"I love olives. That's the point. People change their minds, and they almost never notice."`,

  `Units matter. A model with one billion parameters stored as 16-bit numbers takes about two
gigabytes; stored with 8 bits per weight it takes a little over one gigabyte, and with 4 bits,
a little over half. The context window is counted in tokens, memory in bytes, speed in tokens
per second, and cost in money per million tokens. Mixing them up is the easiest way to be
confidently wrong, so write the unit next to every number, every time.`,

  `The last train left the station at 11:47 pm. On weekdays it was almost empty: a nurse going
home from the late shift, two students with headphones, a man in a suit who always fell asleep
and always woke up exactly one stop before his own. The conductor knew them all by sight. On
Fridays the train was full and loud, and the conductor checked the tickets twice, because
someone always tried to ride for free and someone else always lost their ticket for real.`,

  `How to read a benchmark table: first, find out what was measured and on which machine. Second,
check whether the numbers are averages, medians or best runs. Third, look for the error bars;
if there are none, assume the differences smaller than ten percent mean nothing. Fourth, ask
whether the test looks anything like your own work. A model that wins at trivia may lose at
summaries, and a server that is fast with one user may crawl with fifty.`,

  `Winter in the valley was quiet. Snow covered the fields and the road, and the river froze at
the edges, leaving a dark ribbon of water in the middle that steamed on the coldest mornings.
The grove stood black against the white hills. Foxes crossed it at night, and in the morning
you could read their tracks like sentences: here one stopped to listen, here it jumped, here
it found something under the snow and dug for it, and here it went on, satisfied or not.`,

  `It's not what you'd expect. We've tried it twice, and they'd both say the same thing: it's
simpler than it looks, but you'll need patience. I'm sure you'll manage. Don't worry if it
doesn't work the first time; it didn't work for us either, and we'd been doing this for years.`,
  `The café on the square opened at seven. Its owner, a tall man called René, had come to the
valley thirty years ago to spend one summer and had never left. He made coffee strong enough
to stand a spoon in, and he had opinions about everything: the mayor, the weather, the correct
way to slice an onion. "You are naïve," he told the young teacher, who had suggested a
vegetarian menu. Then he tried it for a week, and it sold out every day, and he never
mentioned his objection again.`,

  `Three things to check when a program is slow. One: is it doing the work you think it is doing,
or something else as well? Count the calls. Two: is it waiting? A program that waits for the
disk, the network or a lock looks idle but is not finished. Three: is it fighting with another
program for the same cores? Two busy programs on two cores can each run at less than half
speed, because they keep pushing each other out of the cache. Measure one thing at a time, and
change one thing at a time.`,

  `"Are you coming to the festival on Saturday?"
"I'd like to, but I promised to help my cousin move. He has a piano."
"A piano? On the third floor?"
"On the fourth. There is no lift."
"Then you will need more help than you think. Call me when you start. I will bring two friends
and a very long rope."
"You are a good friend."
"I am a curious friend. I have always wanted to see how people get a piano down the stairs."`,

  `Every tree in the grove is a record of the years it lived through. Cut one across and you can
count the rings: wide ones for wet summers, narrow ones for droughts, a dark scar where a fire
passed close by. The forester who showed the children a fallen trunk pointed to a ring near the
middle. "This is the year your great-grandparents were born," he said. Then he pointed near the
bark. "And this is the year you were born." The children were quiet for a moment, which almost
never happened.`,

  `Grove keeps every model it makes in a folder of files named by their digests, so the same file
is never stored twice. A small database remembers the names, the parents and the recipes. To
make a new model, you give Grove a preset, a seed and a type; it writes the file, checks it, and
tells you the digest. Give it the same preset, seed and type tomorrow, on another machine, and
you get exactly the same bytes. That is what reproducible means: not similar, not close, but
the same.`,

  `The list of things nobody tells you about keeping bees is long. Bees have moods. They dislike
wind, thunder, the smell of bananas and people who hurry. A strong hive in a good summer makes
more honey than a family can eat; a weak hive in a wet one may need to be fed sugar to survive
the winter. And once you have kept bees for a year, you will never again walk past a flowering
tree without stopping to listen for them.`,
].join("\n\n");
