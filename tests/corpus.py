"""The multilingual test corpus: CORPUS holds prose in many scripts, emoji, source code and whitespace/digit
stress text; `documents()` adds texts found on the machine (the running Python's standard library sources, and
CPython's CJK test texts when installed). The tokenizer tests and benchmarks/bench_tokenizer.py use it.
"""

import glob
import inspect
import os
import sysconfig

CORPUS = {
    "english": """\
All human beings are born free and equal in dignity and rights. They are endowed with reason and conscience
and should act towards one another in a spirit of brotherhood.

It was a bright cold day in April, and the clocks were striking thirteen. The old lighthouse keeper didn't
believe the weather report; he'd seen storms like this before, and they'll always come back. "We're not
leaving," she said, "until you've told us what you saw." Mr. O'Neill's dog—a scruffy terrier named Biscuit—
barked twice at the gulls. The U.S.A. sent 3,500 tonnes of grain in 1947; by 2023 that figure was 12.5%
higher. Email j.doe@example.com or call +1 (555) 010-9999 before 5:30 p.m. on Mon., Jan. 2nd.
Tokenizers split text into pieces: words, numbers like 1234567890, punctuation such as ?!... and spaces.
THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. the quick brown fox jumps over the lazy dog. CamelCaseWords,
snake_case_words, kebab-case-words, and SHOUTING_CONSTANTS all show up in technical writing.
""",
    "german": """\
Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und Gewissen begabt
und sollen einander im Geist der Brüderlichkeit begegnen.

Die Donaudampfschifffahrtsgesellschaftskapitänsmütze hing über der Tür. Größere Straßen führen über die
Brücke nach Süden; dort öffnen die Bäckereien schon um 6 Uhr. „Wir müssen uns beeilen“, sagte Jürgen, „sonst
verpassen wir den Zug um 7:45.“ Übermorgen ist Äpfelernte, und die Öfen müssen bis dahin repariert sein.
Weißt du, wie viele Einwohner München hat? Ungefähr 1,5 Millionen – mehr als Köln, weniger als Hamburg.
""",
    "russian": """\
Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены разумом и совестью и
должны поступать в отношении друг друга в духе братства.

Мороз и солнце; день чудесный! Ещё ты дремлешь, друг прелестный — пора, красавица, проснись. В 1812 году
армия Наполеона вошла в Москву, но уже через месяц была вынуждена отступить. «Где же ты был?» — спросила
она. Съешь же ещё этих мягких французских булок да выпей чаю. Ёжик в тумане искал лошадку, а нашёл филина.
""",
    "chinese": """\
人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。

今天天气很好，我们一起去公园散步吧。北京是中华人民共和国的首都，有三千多年的建城史。他说：“这本书我已经看了三遍了，
每次都有新的收获。”计算机科学是研究计算机及其周围各种现象和规律的科学，亦即研究计算机系统结构、程序系统、人工智能以及
计算本身的性质和问题的学科。2024年第一季度，国内生产总值同比增长5.3％。
""",
    "japanese": """\
すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。人間は、理性と良心とを授け
られており、互いに同胞の精神をもって行動しなければならない。

吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。東京スカイツリーの高さは634メートルです。
コンピューターのプログラミング言語には、パイソンやジャバスクリプトなどがあります。ｶﾀｶﾅとカタカナ、全角ＡＢＣ１２３。
""",
    "korean": """\
모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.
인간은 천부적으로 이성과 양심을 부여받았으며
서로 형제애의 정신으로 행동하여야 한다. 서울은 대한민국의 수도이며, 인구는 약 940만 명이다.
""",
    "arabic": """\
يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق. وهم قد وهبوا العقل والوجدان وعليهم أن يعامل بعضهم بعضًا
بروح الإخاء. اللغة العربية هي إحدى أكثر اللغات انتشارًا في العالم، ويتحدث بها أكثر من ٤٢٢ مليون نسمة.
القاهرة عاصمة مصر، وتقع على ضفاف نهر النيل. ﷽ كتبت الرسالة في ١٢/٠٣/٢٠٢٤.
""",
    "hindi": """\
सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है। उन्हें बुद्धि और
अन्तरात्मा की देन प्राप्त है और परस्पर उन्हें भाईचारे के भाव से बर्ताव करना चाहिए। भारत की राजधानी नई दिल्ली
है। हिन्दी भारत की सबसे अधिक बोली जाने वाली भाषा है, जिसे लगभग ६० करोड़ लोग बोलते हैं।
""",
    "greek_hebrew_thai": """\
Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα. Είναι προικισμένοι με
λογική και συνείδηση, και οφείλουν να συμπεριφέρονται μεταξύ τους με πνεύμα αδελφοσύνης. ΑΘΗΝΑ, Ὀδυσσεύς.
כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם. כולם חוננו בתבונה ובמצפון, לפיכך חובה עליהם לנהוג
איש ברעהו ברוח של אחוה. מִקְרָא עִם נִקּוּד.
มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ ต่างมีเหตุผลและมโนธรรม และควรปฏิบัติต่อกัน
ด้วยเจตนารมณ์แห่งภราดรภาพ กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย
""",
    "latin_mixed": """\
Tất cả mọi người sinh ra đều được tự do và bình đẳng về nhân phẩm và quyền. Bütün insanlar hür, haysiyet ve
haklar bakımından eşit doğarlar; İstanbul'da ılık bir akşam. Tous les êtres humains naissent libres et égaux
en dignité et en droits. ¿Dónde está la estación? ¡Aquí! Zażółć gęślą jaźń. Příliš žluťoučký kůň úpěl ďábelské
ódy. Ǆemal ǅemal ǆemal; ﬁne ﬂour; ſtraße; K (kelvin) Å (angstrom); e\u0301 vs é; ⅫⅩ ½ ² ³ ٣.
Дъ ўі її ґ; Ωμέγα; Ꭰꭰ; 𝐀𝐁𝐂 𝔘𝔫𝔦𝔠𝔬𝔡𝔢; ｆｕｌｌｗｉｄｔｈ.
""",
    "emoji": """\
I love pizza 🍕🍕🍕 and tacos 🌮! Family: 👨‍👩‍👧‍👦, thumbs: 👍🏽👍🏿, flags: 🇩🇪🇯🇵🇺🇸, hearts ❤️💙💚.
Weather ☀️🌧️⛈️ · math ∑∫∂√∞≠≤≥ · arrows ←↑→↓ · box ┌─┐│└┘ · misc ©®™§¶†‡•… · kaomoji ¯\\_(ツ)_/¯ (╯°□°)╯︵ ┻━┻
Zero-width: a\u200bb\u200cc\u200dd\ufeffe; variation selectors: ☺︎ ☺️; tags: 🏴󠁧󠁢󠁳󠁣󠁴󠁿.
""",
    "code": '''\
#include <stdio.h>
// compute the n-th fibonacci number
static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int main(int argc, char **argv) {
\tfor (int i = 0; i < 40; i++) printf("%d: %ld\\n", i, fib(i));
\treturn 0;
}

def tokenize(text: str, *, vocab: dict[str, int] | None = None) -> list[int]:
    """Split `text` and look every piece up."""
    if not text:  # nothing to do
        return []
    pieces = [p for p in re.findall(r"\\w+|[^\\w\\s]+|\\s+", text) if p.strip()]
    return [vocab.get(p, 0) for p in pieces]


class Point:
    __slots__ = ("x", "y")

    def __init__(self, x=0.0, y=0.0):
        self.x, self.y = x, y

    def __repr__(self):
        return f"Point({self.x!r}, {self.y!r})"

{"name": "fastformer", "version": "0.1.0", "tags": ["bpe", "cpu"], "ratio": 2.5e-3, "ok": true, "n": null}
<html><body><div class="x" id='y'>&lt;b&gt; &amp; &#x27;quoted&#39;</div></body></html>
SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC LIMIT 10;
x = a->b; y = *p++; z = (a << 3) | (b >> 2) ^ ~c; if (x != y && y == z || !w) { goto done; }
    ''',
    "whitespace_digits": (
        "   leading spaces\n\n\n\ttabs\t\tand\t\t\ttrailing   \n"
        + " " * 50
        + "x"
        + "\t" * 20
        + "y"
        + "\n" * 30
        + "z\r\n\r\nwindows line\r\n  \r\n"
        + "\u00a0nbsp\u3000ideographic\u2003em\u2028line-sep\u2029para\x85nel\x0bvt\x0cff\n"
        + "1234567890" * 5
        + " 3.14159265358979 -42 +7 1e-9 0x1F 1_000_000 ١٢٣٤٥٦٧٨٩٠ ¹²³ 12/25/2024\n"
        + "    \n" * 10
        + "end   "
    ),
}


def documents():
    """CORPUS plus texts found on this machine: stdlib sources and CPython's CJK test texts (if present)."""
    docs = dict(CORPUS)
    for mod in ("json.decoder", "textwrap", "argparse"):
        module = __import__(mod, fromlist=["_"])
        docs[f"stdlib_{mod}"] = inspect.getsource(module)
    test_dir = os.path.join(sysconfig.get_paths()["stdlib"], "test", "cjkencodings")
    for path in sorted(glob.glob(os.path.join(test_dir, "*-utf8.txt")))[:6]:
        with open(path, encoding="utf-8", errors="replace") as f:
            docs["cjk_" + os.path.basename(path)] = f.read()
    return docs


DOCS = documents()
