#!/usr/bin/env python3
"""Writes the load-test corpus: N Vietnamese economy articles as NDJSON (DESIGN.md "Articles").

Used by bench/loadtest.sh. The output is deterministic (fixed seed, fixed dates in the past), so
every run measures the same feed bytes and the same ETag. With the defaults, /vi/kinh-te/rss.xml
(50 items per page) comes out at about 267 KB identity and 52 KB gzipped, the size of the feed
the issue's nginx figures were measured on.

Text is assembled sentence by sentence, from news templates with many slots and from free
sentences of common Vietnamese words, so that the feed compresses like real news prose (about
5:1 under gzip, with the feed's markup) rather than like a repeated paragraph (50:1).
--prose-share sets the mix, and so the gzip size; --body-bytes the identity size. The defaults
give 267,029 B identity and 52,246 B gzip with bantin's RSS at the time of writing (about 4 KB
of content_html and 1.3 KB of item markup, summary and metadata per item).

    python3 bench/gen_corpus.py [--count 60] [--body-bytes 3850] [--prose-share 0.55] > corpus.ndjson

--mode archive writes a different corpus, for bench/scale.sh and bench/api_throughput.sh: a
newsroom's archive of --count articles in every language and category (--langs, --categories),
published one after another over --span-days years before --newest (distinct instants, the
first line the newest), with tags from a bounded vocabulary (--tags, Zipf-weighted, 2-4 per
article) and bylines from a few dozen names (--authors). Ids are --id-prefix plus the line
number, so they are distinct. --head K puts the K newest articles (the first K lines) all in
--lang/--category: a store loaded with those K lines, then with the rest, serves the same first
pages of that category and language at both sizes (see bench/scale.sh). Text is drawn from a
pool of pre-built sentences (templates and free prose as above, English for `en`), so a million
~2 KB lines take about a minute; the output is streamed, never held in memory.

    python3 bench/gen_corpus.py --mode archive --count 1000000 --body-bytes 1150 --head 1000 > archive.ndjson
"""

import argparse
import datetime as dt
import itertools
import json
import random
import sys

PLACES = [
    "Tân An", "Kiến Tường", "Bến Lức", "Đức Hòa", "Đức Huệ", "Cần Giuộc", "Cần Đước",
    "Tân Trụ", "Châu Thành", "Thủ Thừa", "Thạnh Hóa", "Tân Thạnh", "Mộc Hóa", "Vĩnh Hưng",
    "Tân Hưng", "Long Hậu", "Phước Đông", "Hựu Thạnh", "Lương Hòa", "Mỹ Yên", "Nhựt Chánh",
    "Tân Lập", "Bình Hiệp", "Thạnh Lợi", "Long Cang", "Phước Lâm", "Tuyên Thạnh",
]
SECTORS = [
    "sản xuất lúa gạo", "chế biến thủy sản", "dệt may", "da giày", "logistics",
    "năng lượng tái tạo", "điện mặt trời áp mái", "thanh long xuất khẩu", "chanh không hạt",
    "thương mại điện tử", "bán lẻ hiện đại", "vật liệu xây dựng", "cơ khí chính xác",
    "linh kiện điện tử", "chế biến gỗ", "du lịch sinh thái", "kho lạnh", "nuôi tôm công nghệ cao",
    "khu công nghiệp", "hạ tầng giao thông", "tín dụng vi mô", "xăng dầu", "phân bón hữu cơ",
]
ORGS = [
    "Sở Công Thương", "Sở Kế hoạch và Đầu tư", "Cục Thống kê tỉnh", "Ngân hàng Nhà nước chi nhánh tỉnh",
    "Hiệp hội Doanh nghiệp tỉnh", "Ban Quản lý các khu kinh tế", "UBND tỉnh", "Sở Tài chính",
    "Cục Thuế tỉnh", "Cục Hải quan", "Trung tâm Xúc tiến Thương mại và Đầu tư",
    "Liên minh Hợp tác xã tỉnh", "Sở Nông nghiệp và Môi trường", "Hội Nông dân tỉnh",
]
PEOPLE = [
    "ông Nguyễn Văn Út", "bà Trần Thị Mỹ Linh", "ông Lê Minh Trí", "bà Phạm Ngọc Hân",
    "ông Võ Thành Công", "bà Huỳnh Thị Thu Trang", "ông Đặng Quốc Việt", "bà Lâm Thị Bích Ngọc",
    "ông Trương Hoàng Phúc", "bà Đỗ Thị Kim Oanh", "ông Bùi Văn Hậu", "ông Châu Minh Khang",
]
ROLES = [
    "Giám đốc", "Phó Giám đốc", "Chủ tịch", "Trưởng phòng Kinh tế", "Tổng Giám đốc",
    "Phó Chủ tịch", "Chủ nhiệm hợp tác xã", "Trưởng ban", "Chánh Văn phòng",
]
COMPANIES = [
    "Công ty TNHH Thực phẩm Vàng", "Công ty CP Cơ khí Long Hậu", "Hợp tác xã Thạnh Lợi",
    "Công ty TNHH Dệt may Phước Đông", "Công ty CP Logistics Mê Kông", "Tập đoàn Năng lượng Xanh",
    "Công ty TNHH Nông sản Đồng Tháp Mười", "Công ty CP Đầu tư Hạ tầng Tân Đô",
    "Hợp tác xã Rau sạch Cần Đước", "Công ty TNHH Gỗ Nam Việt", "Công ty CP Thủy sản Vàm Cỏ",
]
MARKETS = [
    "Nhật Bản", "Hàn Quốc", "Hoa Kỳ", "Liên minh châu Âu", "Trung Quốc", "Úc", "Singapore",
    "Hà Lan", "Đức", "Canada", "các nước ASEAN", "Trung Đông", "Ấn Độ",
]
UNITS = ["tỷ đồng", "triệu USD", "tấn", "ha", "lao động", "doanh nghiệp", "dự án", "hợp đồng"]
TRENDS = ["tăng", "giảm", "đạt", "vượt", "tăng nhẹ", "tăng mạnh", "giảm nhẹ", "ước đạt"]
PERIODS = [
    "trong 10 tháng đầu năm", "trong quý III", "so với cùng kỳ năm trước", "trong tháng qua",
    "từ đầu năm đến nay", "trong 6 tháng cuối năm", "so với kế hoạch", "trong giai đoạn 2021-2025",
]
CONCERNS = [
    "thiếu vốn lưu động", "chi phí logistics cao", "thủ tục đất đai kéo dài", "thiếu lao động kỹ thuật",
    "giá nguyên liệu đầu vào biến động", "yêu cầu truy xuất nguồn gốc khắt khe", "lãi suất còn cao",
    "hạ tầng điện chưa đáp ứng", "đơn hàng xuất khẩu sụt giảm", "cạnh tranh gay gắt về giá",
]
ACTIONS = [
    "tháo gỡ khó khăn cho doanh nghiệp", "đẩy nhanh giải ngân vốn đầu tư công", "mở rộng thị trường xuất khẩu",
    "hỗ trợ chuyển đổi số", "cải thiện môi trường đầu tư", "phát triển vùng nguyên liệu",
    "kết nối cung cầu", "đào tạo nguồn nhân lực", "rút ngắn thời gian giải quyết thủ tục",
    "xây dựng thương hiệu nông sản", "thu hút đầu tư vào khu công nghiệp",
]

TEMPLATES = [
    "Theo {org}, {period} giá trị {sector} trên địa bàn {place} {trend} {num} {unit}, {trend2} {pct}% {period2}.",
    "{Person}, {role} {company}, cho biết đơn vị đang tập trung {action}, đồng thời tìm cách khắc phục tình trạng {concern}.",
    "Tại buổi làm việc ở {place}, đại diện {org} đề nghị các ngành liên quan {action} và sớm có giải pháp cho vấn đề {concern}.",
    "Năm nay, {company} dự kiến xuất khẩu khoảng {num} {unit} sang thị trường {market}, {trend} {pct}% {period}.",
    "Hiện {place} có {num2} {unit2} hoạt động trong lĩnh vực {sector}, thu hút hơn {num3} lao động địa phương.",
    "Nhiều hộ dân ở xã {place} cho biết nhờ chuyển sang {sector}, thu nhập bình quân đã {trend} lên khoảng {num4} triệu đồng mỗi tháng.",
    "Số liệu của {org} cho thấy tổng vốn đăng ký mới {period} {trend} {num} {unit}, trong đó vốn đầu tư nước ngoài chiếm {pct}%.",
    "“Chúng tôi mong muốn tỉnh tiếp tục {action}, nhất là trong bối cảnh {concern}”, {person} chia sẻ.",
    "Để {action}, {org} đã phối hợp với {org2} tổ chức {num2} hội nghị kết nối tại {place} và {place2}.",
    "Giá {sector_short} tại {place} hiện dao động từ {price1} đến {price2} đồng/kg, {trend} khoảng {pct}% so với đầu vụ.",
    "Dự án {sector} tại {place} có tổng vốn {num} tỷ đồng, dự kiến hoàn thành vào quý {quarter} năm {year}, tạo việc làm cho {num3} người.",
    "Ngoài ra, {org} khuyến cáo doanh nghiệp chủ động theo dõi diễn biến thị trường {market} để kịp thời điều chỉnh kế hoạch sản xuất.",
]
VOCAB = """và các năm xã an học cho đồng dân tỉnh của công trong với thị tại được long gia viên theo hợp hội có nghiệp từ là quân ở huyện thu tổ tân sinh thanh vụ hơn trường quốc động kết vào lượng đầu chức văn tập số ngày người nhân nhà hóa đến ban tác chiến nông thạnh xuất một đông trình thành vệ trên sở biết nước tăng đã đoàn giá ông hàng cần nhiều nhất khu tham doanh cao ký tiêu giáo lực không trung mỗi chỉ niên bảo biên tự dụng thể nhận đạt vận nội đội toàn mới lúa thời tiếp thông qua phối phòng về hiện để điện phát so truyền hộ tài dự thực cấp khi lên tháng giới ra dung diễn hòa giải triệu minh đang đình làm chính em đức phí lịch kiến sẽ khai cầu cùng tư đề sự nam bộ báo tục định nay tử ruộng đo giảm trước đường khoảng chương hình tuổi trẻ mùa vùng ứng đăng thủ tiền xây tế sản khẩu đơn liên chủ khó tra còn bị luyện án tỷ mục sông quan thi đại bằng chuyển chí tâm huy hiệp bình giao dục quả ninh hỗ trợ con cơ bà đấu phân bao máy thao huấn vật tạo tích trực dựng sau đây cảng đi sáng nghị trưởng nhập thống đối địa phải lớp như hoạch cá lại chi mua bến thêm kỳ hồ đạo bên tuyển đó cũng những chuẩn giờ trang bản suất bàn năng dịch điều khuyến quy nghèo vốn trưng bày hoàn ngành tuyến gian mở khách lễ mặt phường trị chuyên khăn việc phương dịp giữ này ít xem điểm đổi cuối nổi thương hoa sử tổng nâng trọng diện gạo giúp tiết chưa vị ủy phụ nữ lãnh ảnh thường tuyên quyền tình mô tặng nguồn thức tin vực rộng cứu cả từng quản rõ khí thủy thấp gần lý liệu chợ khoản ghi đa lần giống vừa bờ cảnh phần triển vì hậu""".split()
ZIPF = [1.0 / (i + 8) for i in range(len(VOCAB))]
SHORT = ["lúa tươi", "thanh long ruột đỏ", "chanh không hạt", "tôm thẻ", "khóm", "đậu phộng", "mía", "dưa hấu"]
HEADS = [
    "{place}: {sector} {trend} {pct}% {period}",
    "Doanh nghiệp {sector} ở {place} tìm cách {action}",
    "{org} đề xuất giải pháp {action}",
    "Xuất khẩu {sector_short} sang {market} {trend} {pct}%",
    "{company} mở rộng đầu tư tại {place}",
    "Vốn đầu tư vào {sector} ở {place} {trend} {period}",
]
AUTHORS = ["Minh Thư", "Quốc Bảo", "Thanh Tùng", "Ngọc Hân", "Hoài Nam", "Kim Ngân", "Phước Lộc"]
TAGS = ["kinh tế", "đầu tư", "xuất khẩu", "doanh nghiệp", "nông nghiệp", "công nghiệp", "thị trường", "giá cả"]


def fill(rng, template):
    person = rng.choice(PEOPLE)
    vals = {
        "org": rng.choice(ORGS), "org2": rng.choice(ORGS), "place": rng.choice(PLACES),
        "place2": rng.choice(PLACES), "sector": rng.choice(SECTORS), "sector_short": rng.choice(SHORT),
        "trend": rng.choice(TRENDS), "trend2": rng.choice(TRENDS), "period": rng.choice(PERIODS),
        "period2": rng.choice(PERIODS), "unit": rng.choice(UNITS), "unit2": rng.choice(UNITS),
        "num": f"{rng.randint(12, 9800):,}".replace(",", "."), "num2": rng.randint(3, 480),
        "num3": f"{rng.randint(150, 25000):,}".replace(",", "."), "num4": rng.randint(6, 45),
        "pct": f"{rng.randint(1, 60)},{rng.randint(0, 9)}", "market": rng.choice(MARKETS),
        "company": rng.choice(COMPANIES), "person": person, "Person": person[0].upper() + person[1:],
        "role": rng.choice(ROLES), "action": rng.choice(ACTIONS), "concern": rng.choice(CONCERNS),
        "price1": f"{rng.randint(5, 40) * 1000:,}".replace(",", "."),
        "price2": f"{rng.randint(41, 90) * 1000:,}".replace(",", "."),
        "quarter": rng.choice(["I", "II", "III", "IV"]), "year": rng.randint(2026, 2029),
    }
    return template.format(**vals)


def prose(rng):
    """A free sentence of common words, Zipf-weighted: adds the entropy templates lack."""
    n = rng.randint(10, 22)
    words = rng.choices(VOCAB, weights=ZIPF, k=n)
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def sentence(rng, prose_share):
    return prose(rng) if rng.random() < prose_share else fill(rng, rng.choice(TEMPLATES))


def body(rng, target, prose_share):
    """Paragraphs of 2-4 sentences, a figure and sometimes a list or a quote, until ~target bytes."""
    parts, size = [], 0
    lead = " ".join(fill(rng, rng.choice(TEMPLATES)) for _ in range(2))
    parts.append(f"<p><strong>{lead}</strong></p>")
    n = 0
    while size < target:
        n += 1
        if n == 2:
            img = f"/uploads/2026/{rng.randint(1, 3):02d}/{rng.randint(1000, 9999)}.jpg"
            cap = fill(rng, "Sản xuất {sector} tại {place}")
            parts.append(f'<figure><img src="{img}" alt="{cap}"><figcaption>{cap}</figcaption></figure>')
        elif n % 5 == 0:
            items = "".join(f"<li>{sentence(rng, prose_share)}</li>" for _ in range(3))
            parts.append(f"<ul>{items}</ul>")
        elif n % 7 == 0:
            parts.append(f"<blockquote><p>{fill(rng, TEMPLATES[7])}</p></blockquote>")
        else:
            k = rng.randint(2, 4)
            parts.append("<p>" + " ".join(sentence(rng, prose_share) for _ in range(k)) + "</p>")
        size = len("\n".join(parts).encode())
    return "\n".join(parts)



# ---------------------------------------------------------------------------- --mode archive

CATEGORIES = ["quoc-phong", "kinh-te", "xa-hoi", "van-hoa", "the-thao", "nong-nghiep", "giao-duc"]
EN_TEMPLATES = [
    "According to the {org}, {sector} output in {place} {trend} {pct} percent {period}.",
    "{company} plans to ship about {num} tonnes to {market} this year, its director said on {day}.",
    "Officials in {place} asked local agencies to {action} before the end of the {season} season.",
    "The district now has {num2} cooperatives working in {sector}, employing more than {num3} people.",
    "Farmers in {place} said incomes had {trend} to about {num4} million dong a month since they switched to {sector}.",
    "\u201cWe hope the province will keep working to {action},\u201d a representative of the {org} said.",
    "The project in {place} is worth {num} billion dong and is due to be finished in {year}.",
    "Residents of {place} and {place2} joined the {event} on {day}, the organisers said.",
]
EN_FILL = {
    "org": ["Department of Industry and Trade", "provincial People's Committee", "Provincial Statistics Office",
            "Farmers' Association", "Border Guard Command", "Department of Education and Training",
            "Provincial Military Command", "Department of Culture, Sports and Tourism", "Youth Union"],
    "sector": ["rice farming", "seafood processing", "garment making", "logistics", "solar power",
               "dragon fruit exports", "seedless lime growing", "e-commerce", "wood processing",
               "eco-tourism", "high-tech shrimp farming", "industrial parks", "vocational training"],
    "trend": ["rose", "fell", "grew", "edged up", "edged down", "jumped", "slipped"],
    "period": ["in the first ten months", "in the third quarter", "year on year", "last month",
               "since the start of the year", "compared with the plan"],
    "market": ["Japan", "South Korea", "the United States", "the European Union", "China",
               "Australia", "Singapore", "ASEAN countries", "India"],
    "company": ["Vang Food Co.", "Long Hau Engineering", "Thanh Loi Cooperative", "Mekong Logistics JSC",
                "Green Energy Group", "Dong Thap Muoi Produce", "Vam Co Seafood JSC"],
    "action": ["remove obstacles for businesses", "speed up public investment", "expand export markets",
               "support digital transformation", "train skilled workers", "connect buyers and growers",
               "shorten administrative procedures", "build a brand for local produce"],
    "season": ["summer-autumn", "winter-spring", "autumn-winter"],
    "event": ["flag-raising ceremony", "blood donation drive", "provincial games", "book fair",
              "job fair", "military training exercise", "traditional boat race", "farmers' market"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
}
EN_VOCAB = """the of and to in a for on with at by from province district people local officials said
new year month market price farmers rice water road school students teachers soldiers border police
health hospital workers company project investment export growth support training programme
community village commune residents culture festival sports team match season government plan
report data production output income family children youth women veterans security defence river
canal bridge bank loan credit land industrial park power solar electricity trade goods shipping
port cooperative union meeting ceremony award campaign traffic safety weather flood drought crop
harvest fruit shrimp fish tourism hotel visitors digital online service public office provincial
national first last more than about after before during while also will has have was were is are
this that these those each every some many most""".split()
EN_ZIPF = [1.0 / (i + 8) for i in range(len(EN_VOCAB))]
EN_HEADS = [
    "{place}: {sector} {trend} {pct} percent {period}",
    "Businesses in {place} work to {action}",
    "{company} expands in {place}",
    "Exports of {sector} to {market} {trend} {pct} percent",
    "{place} holds {event}",
]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "Lâm", "Trương", "Châu"]
GIVEN = ["Minh Thư", "Quốc Bảo", "Thanh Tùng", "Ngọc Hân", "Hoài Nam", "Kim Ngân", "Phước Lộc",
         "Thu Trang", "Văn Hậu", "Mỹ Linh", "Hoàng Phúc", "Bích Ngọc", "Thành Công", "Minh Khang"]


def en_fill(rng, template):
    vals = {k: rng.choice(v) for k, v in EN_FILL.items()}
    vals.update({
        "place": rng.choice(PLACES), "place2": rng.choice(PLACES), "pct": rng.randint(1, 60),
        "num": f"{rng.randint(12, 9800):,}", "num2": rng.randint(3, 480),
        "num3": f"{rng.randint(150, 25000):,}", "num4": rng.randint(6, 45), "year": rng.randint(2027, 2030),
    })
    s = template.format(**vals)
    return s[0].upper() + s[1:]


def en_prose(rng):
    words = rng.choices(EN_VOCAB, weights=EN_ZIPF, k=rng.randint(10, 22))
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def tag_vocabulary(n):
    """A bounded, deterministic tag vocabulary: topics, sectors, places, markets, then crops by place."""
    base = TAGS + SHORT + SECTORS + PLACES + MARKETS + ORGS
    base += [f"{s} {p}" for s in SHORT for p in PLACES]
    out, seen = [], set()
    for t in base:
        if t not in seen:
            seen.add(t)
            out.append(t)
    if n > len(out):
        raise SystemExit(f"--tags: at most {len(out)} distinct tags")
    return out[:n]


def author_names(n):
    names = [f"{f} {g}" for g in GIVEN for f in FAMILY]
    if n > len(names):
        raise SystemExit(f"--authors: at most {len(names)} names")
    return names[:n]


class Pool:
    """Pre-built sentences, titles and summaries of one language, with their UTF-8 sizes."""

    def __init__(self, rng, lang, size, prose_share):
        if lang == "vi":
            make = lambda: sentence(rng, prose_share)
            head = lambda: fill(rng, rng.choice(HEADS))
            lead = lambda: fill(rng, rng.choice(TEMPLATES))
            cap = lambda: fill(rng, "Toàn cảnh {sector} ở {place}")
        else:
            make = lambda: en_prose(rng) if rng.random() < prose_share else en_fill(rng, rng.choice(EN_TEMPLATES))
            head = lambda: en_fill(rng, rng.choice(EN_HEADS))
            lead = lambda: en_fill(rng, rng.choice(EN_TEMPLATES))
            cap = lambda: en_fill(rng, "{sector} in {place}")
        self.sentences = [make() for _ in range(size)]
        self.sizes = [len(s.encode()) + 1 for s in self.sentences]
        self.heads = [head() for _ in range(max(size // 4, 1))]
        self.leads = [lead() for _ in range(max(size // 4, 1))]
        self.captions = [cap() for _ in range(max(size // 8, 1))]


def archive_body(rng, pool, target):
    """Paragraphs of 2-4 pooled sentences (a figure after the first) until ~target bytes."""
    parts, size, n = [], 0, 0
    idx = range(len(pool.sentences))
    while size < target:
        n += 1
        if n == 2 and rng.random() < 0.5:
            cap = rng.choice(pool.captions)
            p = f'<figure><img src="/uploads/{rng.randint(2017, 2026)}/{rng.randint(1000, 99999)}.jpg" alt="{cap}"><figcaption>{cap}</figcaption></figure>'
            parts.append(p)
            size += len(p.encode()) + 1
            continue
        picks = rng.choices(idx, k=rng.randint(2, 4))
        p = "<p>" + " ".join(pool.sentences[i] for i in picks) + "</p>"
        parts.append(p)
        size += sum(pool.sizes[i] for i in picks) + 8
    return "\n".join(parts)


def archive(a):
    rng = random.Random(a.seed)
    langs = [x for x in a.langs.split(",") if x]
    cats = CATEGORIES if a.categories == "all" else [x for x in a.categories.split(",") if x]
    for l in langs + [a.lang]:
        if l not in ("vi", "en"):
            raise SystemExit(f"--langs/--lang: text is generated for vi and en only, not {l!r}")
    tags = tag_vocabulary(a.tags)
    tag_cum = list(itertools.accumulate(1.0 / (i + 3) for i in range(len(tags))))
    authors = author_names(a.authors)
    pools = {l: Pool(rng, l, a.pool, a.prose_share) for l in sorted(set(langs + [a.lang]))}
    newest = dt.datetime.fromisoformat(a.newest)
    if newest.tzinfo is None:
        raise SystemExit("--newest needs an offset, e.g. 2026-06-30T18:00:00+07:00")
    newest_s = int(newest.timestamp())
    zone = dt.timezone(dt.timedelta(hours=7))
    # Instants strictly decreasing line by line: line i at newest - i*step - jitter, jitter < step.
    step = max(1, (a.span_days * 86400) // max(a.count, 1))
    out = sys.stdout
    write = out.write
    for i in range(a.count):
        if i < a.head:
            lang, cat = a.lang, a.category
        else:
            lang, cat = rng.choice(langs), rng.choice(cats)
        pool = pools[lang]
        ident = f"{a.id_prefix}-{i:07d}"
        t = newest_s - i * step - (rng.randrange(step) if step > 1 else 0)
        published = dt.datetime.fromtimestamp(t, zone)
        k = rng.choice((2, 2, 3, 3, 3, 4))
        picked = list(dict.fromkeys(rng.choices(tags, cum_weights=tag_cum, k=k)))
        art = {
            "id": ident,
            "lang": lang,
            "category": cat,
            "title": rng.choice(pool.heads),
            "summary": rng.choice(pool.leads),
            "content_html": archive_body(rng, pool, a.body_bytes),
            "url": f"https://baolongan.example/{lang}/{cat}/{ident}",
            "author": rng.choice(authors),
            "published_at": published.isoformat(),
            "tags": picked,
            "status": "published",
        }
        if rng.random() < 0.2:
            art["updated_at"] = (published + dt.timedelta(minutes=rng.randint(5, 600))).isoformat()
        if rng.random() < 0.8:
            art["image"] = {
                "url": f"https://baolongan.example/uploads/{published.year}/{ident}.jpg",
                "caption": rng.choice(pool.captions),
                "mime": "image/jpeg",
                "length": rng.randint(40_000, 250_000),
            }
        write(json.dumps(art, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--body-bytes", type=int, default=3850,
                    help="content_html size per article (the body stops at the first paragraph past it)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--prose-share", type=float, default=0.55,
                    help="share of body sentences that are free prose rather than templates")
    ap.add_argument("--category", default="kinh-te")
    ap.add_argument("--lang", default="vi")
    ap.add_argument("--mode", choices=["feed", "archive"], default="feed",
                    help="feed: one feed's worth of articles (the default, for loadtest.sh); "
                         "archive: a multi-year archive in every language and category")
    g = ap.add_argument_group("--mode archive")
    g.add_argument("--langs", default="vi,en", help="comma-separated languages (vi, en)")
    g.add_argument("--categories", default="all", help="comma-separated category ids, or all")
    g.add_argument("--tags", type=int, default=300, help="size of the tag vocabulary")
    g.add_argument("--authors", type=int, default=40, help="number of distinct bylines")
    g.add_argument("--span-days", type=int, default=3650, help="days between the newest and oldest article")
    g.add_argument("--newest", default="2026-06-30T18:00:00+07:00", help="published_at of the first line")
    g.add_argument("--head", type=int, default=0,
                   help="the first HEAD (newest) articles are all in --lang and --category")
    g.add_argument("--id-prefix", default="arc", help="ids are PREFIX-0000000, PREFIX-0000001, ...")
    g.add_argument("--pool", type=int, default=20000, help="pre-built sentences per language")
    a = ap.parse_args()
    if a.mode == "archive":
        archive(a)
        return
    rng = random.Random(a.seed)
    # Fixed instants well in the past, 7 hours apart: distinct, and in every feed on any later day.
    start = dt.datetime(2026, 3, 1, 6, 15)
    out = sys.stdout
    for i in range(a.count):
        published = start + dt.timedelta(hours=7 * i, minutes=rng.randint(0, 59))
        art = {
            "id": f"bench-{a.category}-{i:04d}",
            "lang": a.lang,
            "category": a.category,
            "title": fill(rng, rng.choice(HEADS)),
            "summary": " ".join(fill(rng, rng.choice(TEMPLATES)) for _ in range(2)),
            "content_html": body(rng, a.body_bytes, a.prose_share),
            "url": f"https://baolongan.example/{a.lang}/{a.category}/bench-{i:04d}",
            "author": rng.choice(AUTHORS),
            "published_at": published.strftime("%Y-%m-%dT%H:%M:00"),
            "tags": rng.sample(TAGS, 2),
            "image": {
                "url": f"https://baolongan.example/uploads/2026/bench-{i:04d}.jpg",
                "caption": fill(rng, "Toàn cảnh {sector} ở {place}"),
                "mime": "image/jpeg",
                "length": rng.randint(40_000, 250_000),
            },
            "status": "published",
        }
        out.write(json.dumps(art, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
