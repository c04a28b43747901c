"""Every sentence the bot says, in one place. Facts about an event are never written here: they are
filled in from ``config.toml`` (``Event`` and ``Talk``) by the functions below."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from models.content import Event, Talk
from models.redact import mask_phone_numbers

WEEKDAYS = "一二三四五六日"

TOPIC_LABELS = {
    "agenda": "议程与嘉宾",
    "time": "活动时间",
    "venue": "活动地点",
    "livestream": "线上直播",
    "materials": "课件与回放",
    "now_next": "正在进行",
    "register": "我要报名",
    "my_registration": "我的报名",
}


def date_text(moment: datetime) -> str:
    """``2023年3月26日（周日）``"""
    return f"{moment.year}年{moment.month}月{moment.day}日（周{WEEKDAYS[moment.weekday()]}）"


def clock_text(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def moment_text(moment: datetime, tz) -> str:
    """``2023年3月20日（周一）10:00`` in ``tz``."""
    local = moment.astimezone(tz)
    return f"{date_text(local)}{clock_text(local)}"


def event_when(event: Event, tz) -> str:
    """``2023年3月26日（周日）14:00–17:00``, or both dates when the event spans days."""
    start, end = event.starts_at.astimezone(tz), event.ends_at.astimezone(tz)
    if start.date() == end.date():
        return f"{date_text(start)}{clock_text(start)}–{clock_text(end)}"
    return f"{date_text(start)}{clock_text(start)} – {date_text(end)}{clock_text(end)}"


def duration_text(delta: timedelta) -> str:
    """``3 天 5 小时`` / ``2 小时 10 分钟`` / ``15 分钟``: the two largest units, rounded down."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {minutes} 分钟" if minutes else f"{hours} 小时"
    return f"{max(minutes, 1)} 分钟"


def event_status(event: Event, now: datetime, tz) -> str:
    if now < event.starts_at:
        return f"距离开始还有 {duration_text(event.starts_at - now)}。"
    if now < event.ends_at:
        return f"活动正在进行中，{clock_text(event.ends_at.astimezone(tz))} 结束。"
    return f"本场活动已于 {date_text(event.ends_at.astimezone(tz))}{clock_text(event.ends_at.astimezone(tz))} 结束，感谢关注！"


def heading(event: Event) -> str:
    return f"{event.name}\n「{event.title}」" if event.series else f"「{event.title}」"


def talk_line(index: int, talk: Talk, tz) -> str:
    when = ""
    if talk.starts_at:
        when = f"{clock_text(talk.starts_at.astimezone(tz))} "
    speaker = f"{talk.speaker}｜{talk.speaker_title}" if talk.speaker_title else talk.speaker
    return f"{index}. {when}《{talk.title}》\n   {speaker}"


def agenda(event: Event, tz) -> str:
    if not event.talks:
        return f"{heading(event)}\n时间：{event_when(event, tz)}\n议程还在确定中，确定后会第一时间在这里公布。"
    lines = [f"{heading(event)}\n时间：{event_when(event, tz)}\n\n议程（共 {len(event.talks)} 场分享）："]
    lines += [talk_line(index, talk, tz) for index, talk in enumerate(event.talks, start=1)]
    lines.append("\n回复序号（如「1」）或讲师姓名，查看该场分享的简介和大纲。")
    return "\n".join(lines)


def talk_detail(index: int, talk: Talk, event: Event, now: datetime, tz) -> str:
    speaker = f"{talk.speaker}（{talk.speaker_title}）" if talk.speaker_title else talk.speaker
    parts = [f"第 {index} 场：《{talk.title}》", f"讲师：{speaker}"]
    if talk.starts_at:
        end = f"–{clock_text(talk.ends_at.astimezone(tz))}" if talk.ends_at else ""
        parts.append(f"时间：{date_text(talk.starts_at.astimezone(tz))}{clock_text(talk.starts_at.astimezone(tz))}{end}")
    if talk.abstract:
        parts.append(f"\n简介：{talk.abstract}")
    if talk.outline:
        parts.append("\n主要内容：\n" + "\n".join(f"{n}. {item}" for n, item in enumerate(talk.outline, start=1)))
    if now >= event.ends_at:
        links = material_links(talk.slides_url, talk.replay_url)
        if links:
            parts.append("\n" + links)
    parts.append("\n回复「议程」查看全部分享。")
    return "\n".join(parts)


def talks_about(event: Event, numbers: list[int], tz) -> str:
    """The talks a question named by content, numbered as in the agenda."""
    lines = [f"有 {len(numbers)} 场相关的分享："]
    lines += [talk_line(number, event.talks[number - 1], tz) for number in numbers]
    lines.append("\n回复序号查看该场分享的简介和大纲。")
    return "\n".join(lines)


def no_such_talk(count: int) -> str:
    return f"本场活动共有 {count} 场分享，请回复 1–{count} 之间的序号，或回复「议程」查看全部。"


def time_answer(event: Event, now: datetime, tz) -> str:
    return f"{heading(event)}\n时间：{event_when(event, tz)}\n{event_status(event, now, tz)}"


def venue_answer(event: Event, now: datetime, tz) -> str:
    lines = [f"{heading(event)}", f"地点：{event.venue}"]
    if event.map_url:
        lines.append(f"地图导航：{event.map_url}")
    lines.append(f"时间：{event_when(event, tz)}")
    if event.format:
        lines.append(f"形式：{event.format}")
    if now >= event.ends_at:
        lines.append(event_status(event, now, tz))
    elif event.has_livestream:
        lines.append("无法到场也可以观看线上直播，回复「直播」了解。")
    return "\n".join(lines)


def location_answer(event: Event, now: datetime, tz) -> str:
    return "收到你的位置。\n" + venue_answer(event, now, tz)


def livestream_answer(event: Event, now: datetime, tz) -> str:
    lines = [heading(event)]
    if event.format:
        lines.append(f"形式：{event.format}")
    if not event.has_livestream:
        lines.append("本场活动没有线上直播，欢迎到现场参加。回复「地点」查看地址。")
        return "\n".join(lines)
    if now >= event.ends_at:
        lines.append("直播已经结束。回复「回放」查看课件和回放。")
    elif event.stream_url:
        lines.append(f"直播链接：{event.stream_url}")
        lines.append(f"直播时间：{event_when(event, tz)}")
    elif now >= event.starts_at:
        lines.append(f"直播进行中，{clock_text(event.ends_at.astimezone(tz))} 结束。直播链接见活动预告文章和活动群。")
    else:
        lines.append(f"直播时间：{event_when(event, tz)}")
        lines.append("直播链接会在活动开始前在本公众号公布，敬请关注。")
    return "\n".join(lines)


def material_links(slides_url: str, replay_url: str) -> str:
    lines = []
    if slides_url:
        lines.append(f"课件：{slides_url}")
    if replay_url:
        lines.append(f"回放：{replay_url}")
    return "\n".join(lines)


def materials_answer(event: Event, now: datetime) -> str:
    lines = [heading(event)]
    event_links = material_links(event.slides_url, event.replay_url)
    talk_links = [
        f"{index}. 《{talk.title}》\n" + links
        for index, talk in enumerate(event.talks, start=1)
        if (links := material_links(talk.slides_url, talk.replay_url))
    ]
    if now < event.ends_at:
        lines.append("课件和回放会在活动结束后分享，届时回复「回放」即可获取。")
        return "\n".join(lines)
    if not event_links and not talk_links:
        lines.append("活动已结束，课件和回放正在整理中，整理好后会在本公众号发布，敬请关注。")
        return "\n".join(lines)
    if event_links:
        lines.append(event_links)
    lines += talk_links
    return "\n".join(lines)


def now_untimed(event: Event, now: datetime, tz) -> str:
    """现在在讲什么 when the talks have no times: where the event stands, in at most four lines."""
    if event.starts_at <= now < event.ends_at:
        count = f"共 {len(event.talks)} 场分享，" if event.talks else ""
        return f"{heading(event)}\n{event_status(event, now, tz)}\n{count}各场的具体时间没有公布，回复「议程」查看分享顺序。"
    return f"{time_answer(event, now, tz)}\n回复「议程」查看分享安排。" if now < event.ends_at else time_answer(event, now, tz)


def now_next_answer(event: Event, now: datetime, tz) -> str | None:
    """Who speaks now and next, when talk times are configured and the event is under way; else None."""
    timed = [talk for talk in event.talks if talk.starts_at]
    if not (event.starts_at <= now < event.ends_at) or not timed:
        return None
    current = next((t for t in timed if t.starts_at <= now and (t.ends_at is None or now < t.ends_at)), None)
    upcoming = next((t for t in sorted(timed, key=lambda t: t.starts_at) if t.starts_at > now), None)
    lines = [heading(event)]
    if current:
        lines.append(f"正在分享：《{current.title}》— {current.speaker}")
    if upcoming:
        lines.append(f"下一场：{clock_text(upcoming.starts_at.astimezone(tz))}《{upcoming.title}》— {upcoming.speaker}")
    if not current and not upcoming:
        lines.append("分享环节已经结束。")
    return "\n".join(lines)


# Reminder wording when ``[reminders]`` in config.toml leaves a template out; placeholders as listed there.
DEFAULT_REMINDER_TEMPLATES = {
    "onsite": "【活动提醒】{event}「{title}」将于 {when} 开始，还有 {starts_in}。\n地点：{venue}\n你的签到码：{checkin_code}",
    "online": "【直播提醒】{event}「{title}」将于 {when} 开始，还有 {starts_in}。\n直播链接：{stream_link}",
    "waitlisted": "【活动提醒】{event}「{title}」将于 {when} 开始。你目前在候补名单中，有名额空出时会第一时间通知你。",
    "online_start": "【直播开始】{event}「{title}」现在开始，点击观看直播：{stream_link}",
}
STREAM_LINK_PENDING = "开播前会在本公众号公布"


def reminder(template: str, event: Event, now: datetime, tz, checkin_code: str = "") -> str:
    """A reminder filled in from the event's facts; ``template`` is one of ``[reminders]`` (or its default)."""
    return template.format(
        event=event.name,
        title=event.title,
        when=event_when(event, tz),
        starts_in=duration_text(event.starts_at - now),
        venue=event.venue,
        checkin_code=checkin_code,
        stream_link=event.stream_url or STREAM_LINK_PENDING,
    )


def help_menu(account_name: str, event: Event, topics: list[str]) -> str:
    lines = [f"你好，我是{account_name}的活动助手。关于「{event.name}」，回复数字或关键词："]
    lines += [f"{number}. {TOPIC_LABELS.get(topic, topic)}" for number, topic in enumerate(topics, start=1)]
    return "\n".join(lines)


def topic_choice(topics: Iterable[str]) -> str:
    """Asks which of several topics a message meant; a bare number answers."""
    lines = ["你是想问："] + [f"{number}. {TOPIC_LABELS[topic]}" for number, topic in enumerate(topics, start=1)]
    return "\n".join([*lines, "回复数字即可。"])


def welcome(account_name: str, event: Event, now: datetime, tz) -> str:
    if now >= event.ends_at:
        status = f"「{event.name}」已于 {date_text(event.ends_at.astimezone(tz))} 圆满结束，回复「回放」获取课件与回放。"
    else:
        where = f"在{event.city}" if event.city else ""
        mode = f"，{event.format}" if event.format else ""
        status = f"{event.name}「{event.title}」将于 {event_when(event, tz)} {where}举行{mode}。\n地点：{event.venue}"
    return f"感谢关注{account_name}！\n{status}"


UNSUPPORTED_MEDIA = {
    "image": "收到你的图片啦。我目前只能看懂文字消息，",
    "voice": "收到你的语音，但没能听清内容，",
    "video": "收到你的视频啦。我目前只能看懂文字消息，",
    "shortvideo": "收到你的小视频啦。我目前只能看懂文字消息，",
    "link": "收到你分享的链接，但我打不开链接，有问题请直接用文字问我。",
}
MEDIA_FALLBACK = "收到你的消息。我目前只能看懂文字消息，"
TRY_KEYWORDS = "试试回复「议程」「时间」「地点」，或回复「帮助」查看全部功能。"
# Unmatched text after the default reply was sent within the hour (the MP console's rule): a short pointer.
THANKS_WORDS = ("谢", "thank", "thx")
SMALL_TALK_THANKS = "不客气😊 还有想了解的，随时问我，或回复「帮助」查看我能回答的问题。"
SMALL_TALK = "😊 有问题随时问我，回复「帮助」查看我能回答的问题。"
ASK_A_PERSON = "请直接发来你的问题：我能回答的马上回答，回答不了的会转给主办方工作人员，他们会在这里回复你。"
PASSED_TO_ORGANIZERS = "这个问题我还答不上来，已转给主办方工作人员，他们回复后会在这里发给你。"
HELP_MENU_LINES_AFTER_INBOX = 4


def passed_to_organizers(menu: str) -> str:
    """The honest reply to a question kept for the organizers, and the first lines of the help menu."""
    return PASSED_TO_ORGANIZERS + "\n\n" + "\n".join(menu.splitlines()[:HELP_MENU_LINES_AFTER_INBOX])


def inbox_answer(question: str, answer: str) -> str:
    """The organizers' answer as the follower receives it, with the question it answers."""
    return f"关于你的提问「{question}」，主办方工作人员回复：\n{answer}"


HELP_POINTER = "抱歉，没有找到相关内容。回复「帮助」查看我能回答的问题。"
HANDLER_FAILED = "抱歉，系统开小差了，请稍后再试。"
# Once when a follower goes over the rate limit ([rate_limit] in config.toml); later messages get nothing.
TOO_FREQUENT = "消息太频繁，请稍后再试。"

# Registration: the form, the record, cancellation, check-in. Prompts may be overridden in config.toml.
FIELD_LABELS = {"name": "姓名", "phone": "手机号", "company": "公司/单位", "title": "职位"}
FIELD_PROMPTS = {
    "name": "请回复你的姓名：",
    "phone": "请回复你的手机号（11 位中国大陆手机号）：",
    "company": "请回复你的公司/单位：",
    "title": "请回复你的职位：",
    "attendance": "请问你如何参加？回复「现场」到场参加，或回复「线上」观看直播：",
}
ATTENDANCE_LABELS = {"onsite": "现场参加", "online": "线上观看直播"}
ATTENDANCE_WORDS = {
    "现场": "onsite", "线下": "onsite", "到场": "onsite", "现场参加": "onsite", "线下参加": "onsite",
    "线上": "online", "直播": "online", "在线": "online", "远程": "online", "网上": "online", "线上参加": "online",
    "看直播": "online", "online": "online", "onsite": "onsite",
}
CONFIRM_WORDS = frozenset({"确认", "确定", "是"})
# When the room is full, on site means the waitlist.
WAITLIST_WORDS = {"候补": "onsite", "排队": "onsite", "等候补": "onsite", "现场候补": "onsite", "候补现场": "onsite"}
# The answer to 「用上次的信息报名？」.
REUSE_WORDS = {
    **dict.fromkeys(CONFIRM_WORDS | {"好", "好的", "可以", "用"}, "yes"),
    **dict.fromkeys({"否", "不", "不用", "不要"}, "no"),
}
LEAVE_WORDS = frozenset({"取消", "退出", "取消报名", "退出报名", "不报了"})
RESTART_WORDS = frozenset({"修改", "重新填写", "重填"})
STATUS_LABELS = {"confirmed": "报名成功", "waitlisted": "候补中", "cancelled": "已取消"}

NAME_INVALID = "这看起来不像姓名：请回复你的姓名（如「张三」或「Li Lei」）。"
PHONE_INVALID = "手机号格式不对：请回复 11 位中国大陆手机号（如 13812345678），可带 +86、空格或横线。"
ATTENDANCE_INVALID = "请回复「现场」或「线上」。"
# The seats are taken when 报名 comes: said first, and how to attend is chosen before anything else.
ONSITE_FULL_PROMPT = (
    "现场名额已满。回复「线上」观看直播（不限名额），"
    "或回复「候补」排队等现场名额（有人取消时按顺序递补，并第一时间通知你）："
)
ONSITE_FULL_INVALID = "请回复「线上」或「候补」。"
# The same, for an event without a livestream: there is nothing to choose.
ONSITE_FULL_WAITLIST = "现场名额已满：现在报名会进入候补名单，有人取消时按顺序递补，并第一时间通知你。"
ATTENDANCE_WAITLIST_LABEL = "现场参加（候补）"
PHONE_SHARED = (
    "提示：本活动已有其他报名使用这个手机号。共用手机号可以继续报名（主办方会看到这条提示）；"
    "如果填错了，核对信息时回复「修改」重新填写。"
)
NAME_CONFIRM_PROMPT = "回复「是」确认，或重新输入姓名。"
REUSE_PROMPT = "用上次的信息报名？回复「是」使用，回复「否」重新填写。"
REUSE_INVALID = "请回复「是」或「否」。"
# What WeChat's retry gets instead of a reply quoting answers (see FORM_SUMMARY_STAND_IN).
REUSE_STAND_IN = f"已找到你上次报名时填写的信息。{REUSE_PROMPT}"
NAME_CONFIRM_STAND_IN = f"请确认你的姓名：{NAME_CONFIRM_PROMPT}"
KEPT_FOR_REUSE = "为你重新报名保留的信息"
NOT_UNDERSTOOD = "没有看懂你的回复。"
CONFIRM_PROMPT = "回复「确认」完成报名，回复「修改」重新填写，回复「取消」放弃"
# What WeChat's retry of a message gets when the reply showed the answers: stored replies hold no personal field.
FORM_SUMMARY_STAND_IN = f"报名信息已填好。{CONFIRM_PROMPT}。"
FORM_LEFT = "已退出报名，填写的内容没有保存。需要时再回复「报名」。"
FORM_RESTART = "好的，我们重新填写。"
FORM_HELP = "你正在填写报名信息：回复「取消」退出，回复「修改」重新填写。"
NOT_REGISTERED = "你还没有报名本场活动，回复「报名」即可报名。"
NOT_REGISTERED_ENDED = "你没有报名这场活动，它已经结束了。下一场活动公布后，会在本公众号通知。"
CANCEL_CONFIRM_PROMPT = "确定要取消报名吗？回复「确认」取消报名，回复其他内容保留报名。"
CANCEL_KEPT = "好的，已为你保留报名。回复「我的报名」查看。"
CHANGES_CLOSED = "活动已经开始，报名信息无法再修改或取消。"
CHECKIN_UNKNOWN = "这个签到二维码不属于我们的活动，请联系现场工作人员。"


def field_empty(label: str) -> str:
    return f"{label}不能为空，请重新回复。"


def field_too_long(label: str, limit: int) -> str:
    return f"{label}最多 {limit} 个字，请精简后重新回复。"


def form_intro(event: Event) -> str:
    return f"开始报名「{event.name}」。随时回复「取消」可退出。"


def name_confirmation(name: str) -> str:
    """A name of one Latin letter is taken only once the follower says it is theirs."""
    return f"名字是“{name}”吗？{NAME_CONFIRM_PROMPT}"


def field_lines(values: dict, fields) -> list[tuple[str, str]]:
    """(label, value) of each of ``fields`` that ``values`` holds, in that order, the phone masked."""
    return [
        (FIELD_LABELS[field], mask_phone_numbers(value) if field == "phone" else value)
        for field in fields
        if (value := values.get(field)) is not None
    ]


def _lines(lines: list[tuple[str, str]]) -> str:
    return "\n".join(f"{label}：{value}" for label, value in lines)


def form_summary(lines: list[tuple[str, str]]) -> str:
    """The answers for review, then how to confirm; ``lines`` are (label, value) pairs, phone already masked."""
    return f"请核对报名信息：\n{_lines(lines)}\n\n{CONFIRM_PROMPT}"


def reuse_offer(lines: list[tuple[str, str]]) -> str:
    """The answers of the cancelled registration, offered again at 报名 (phone masked)."""
    return f"你上次报名时填写的信息：\n{_lines(lines)}\n\n{REUSE_PROMPT}"


def registration_closed(event: Event, now: datetime, tz) -> str:
    if now >= event.ends_at:
        return f"「{event.name}」已经结束，报名已关闭。"
    deadline = event.registration_deadline.astimezone(tz)
    return f"「{event.name}」的报名已于 {date_text(deadline)}{clock_text(deadline)} 截止。"


def _attending(event: Event, attendance: str, tz) -> list[str]:
    """Where and how: the venue for a seat, the stream for online."""
    lines = [f"时间：{event_when(event, tz)}"]
    if attendance == "online":
        lines.append(f"直播链接：{event.stream_url}" if event.stream_url else "直播链接会在活动开始前在本公众号发送给你。")
    else:
        lines.append(f"地点：{event.venue}")
    return lines


def registration_record(event: Event, registration, tz, calendar_url: str = "") -> str:
    """A registration as the follower sees it: status, code, place in line, time and place."""
    status = STATUS_LABELS[registration.status]
    if registration.status == "waitlisted":
        status = f"{status}（第 {registration.position} 位）"
    lines = [
        heading(event),
        f"状态：{status}",
        f"参加方式：{ATTENDANCE_LABELS[registration.attendance]}",
    ]
    # Only a seat is checked in: online registrants get the stream, not a code to show at the door.
    if registration.attendance != "online":
        lines.append(f"签到码：{registration.checkin_code}")
    if registration.checked_in_at is not None:
        lines.append("已签到")
    lines += _attending(event, registration.attendance, tz)
    if calendar_url:
        lines.append(f"添加到日历：{calendar_url}")
    return "\n".join(lines)


def registration_done(event: Event, registration, tz, calendar_url: str = "") -> str:
    if registration.status == "waitlisted":
        opening = "现场名额已满，你已进入候补名单。有人取消时会按顺序递补，并第一时间通知你。"
    elif registration.attendance == "online":
        opening = "报名成功！你将在线上观看直播。"
    else:
        opening = "报名成功！到场后扫描签到二维码或出示签到码即可签到。"
    record = registration_record(event, registration, tz, calendar_url)
    return f"{opening}\n{record}\n\n回复「我的报名」查看，回复「取消报名」取消。"


def already_registered(event: Event, registration, tz) -> str:
    return "你已经报名了本场活动：\n" + registration_record(event, registration, tz)


def registration_cancelled(event: Event, kept: bool) -> str:
    """After 取消报名: the registration's answers are erased; ``kept``: a copy is kept for the follower alone."""
    if not kept:
        return f"已取消你在「{event.name}」的报名，你填写的报名信息已删除。"
    return (
        f"已取消你在「{event.name}」的报名，主办方名单中你的报名信息已删除。你填写的内容只为你保留到报名截止："
        "重新回复「报名」可以直接使用，回复「删除我的信息」可立即删除。"
    )


def promoted_from_waitlist(event: Event, registration, tz) -> str:
    return "好消息：有人取消了报名，你已从候补转为正式报名！\n" + registration_record(event, registration, tz)


def attendance_unchanged(attendance: str) -> str:
    return f"你的参加方式已经是「{ATTENDANCE_LABELS[attendance]}」，无需修改。"


def attendance_changed(event: Event, registration, tz) -> str:
    return "已修改参加方式。\n" + registration_record(event, registration, tz)


def checked_in(event: Event, registration, *, named: bool = True) -> str:
    """The welcome after a check-in scan, greeting the registrant by name unless ``named`` is False (the
    stand-in that a stored reply keeps)."""
    name = f"{registration.name}，" if named and registration.name else ""
    return (
        f"{name}签到成功，欢迎来到「{event.name}」！\n地点：{event.venue}\n签到码：{registration.checkin_code}"
    )


def checkin_waitlisted(position: int) -> str:
    return f"你目前在候补名单第 {position} 位，暂时无法签到，请联系现场工作人员。"


def checkin_closed(event: Event, now: datetime, tz) -> str:
    """A scan of the check-in code outside its window: when check-in opens, or that it has closed."""
    if now >= event.ends_at:
        return f"「{event.name}」已经结束，签到已关闭。"
    opens = event.checkin_opens_at.astimezone(tz)
    return (
        f"「{event.name}」的签到将于 {date_text(opens)}{clock_text(opens)} 开放"
        f"（活动开始前 {duration_text(event.starts_at - opens)}），到时请再扫码签到。"
    )


def checkin_not_registered(event: Event, open_for_registration: bool) -> str:
    if open_for_registration:
        return f"你还没有报名「{event.name}」。回复「报名」即可报名，报名成功后再扫码签到。"
    return f"你还没有报名「{event.name}」，现场名额请咨询工作人员。"

# Organizers' commands in the chat (only for EVENTBOT_ADMIN_OPENIDS).
ADMIN_STATUS_LABELS = {"confirmed": "已确认", "waitlisted": "候补", "cancelled": "已取消"}
ADMIN_AUDIENCE_WORDS = {
    "": "confirmed", "现场": "onsite", "线上": "online", "候补": "waitlisted", "未签到": "not_checked_in"
}
ADMIN_AUDIENCE_LABELS = {
    "confirmed": "已确认报名的人",
    "onsite": "现场参加的人",
    "online": "线上观看的人",
    "waitlisted": "候补名单",
    "checked_in": "已签到的人",
    "not_checked_in": "已确认但未签到的人",
    "all_registrants": "全部报名者",
}
ADMIN_HELP = (
    "管理员命令：\n"
    "统计：当前活动的报名统计\n"
    "查询 姓名/公司/签到码/手机尾号：最多显示 10 条\n"
    "签到 签到码：为报名者签到\n"
    "广播 内容（或 广播 现场/线上/候补/未签到 内容）：预览后回复「确认广播」发送\n"
    "问题：粉丝提出、机器人答不上来的问题\n"
    "回答 编号 内容：回复该问题的所有提问者（客服消息，48 小时内可达）"
)
ADMIN_INBOX_EMPTY = "没有待回答的问题。"
# What WeChat's retry of a command gets when the reply showed registrants or their questions.
ADMIN_REPLY_STAND_IN = "已收到。回复里有报名者的个人信息，没有留存：需要时请再发一次同样的命令查看。"
ADMIN_INBOX_LIMIT = 10


def admin_inbox(groups) -> str:
    """The open question groups for an organizer in the chat: number, how many asked, the wording."""
    lines = [f"待回答的问题（共 {len(groups)} 组，回复「回答 编号 内容」）："]
    lines += [f"#{group.id}（{group.askers} 人问）{group.text}" for group in groups[:ADMIN_INBOX_LIMIT]]
    return "\n".join(lines)


def admin_answered(count: int) -> str:
    return f"已回答 {count} 位提问者，答复将以客服消息发出（对 48 小时内没有发过消息的人无法送达）。"


def admin_no_question(question_id: int) -> str:
    return f"没有编号为 {question_id} 的待回答问题。回复「问题」查看。"
ADMIN_NO_MATCH = "没有找到匹配的报名记录。"
ADMIN_QUERY_HINT = "可按姓名、公司、签到码或手机尾号（至少 4 位）查询，最多显示 10 条。"
ADMIN_NO_DRAFT = "没有待确认的广播。发送「广播 内容」（或「广播 现场 内容」「广播 线上 内容」等）先预览。"
ADMIN_DRAFT_DISCARDED = "已放弃这条广播，没有发送。"
# A state-changing command that arrived in plaintext while safe mode is configured: its sender is unsigned.
ADMIN_NEEDS_SAFE_MODE = "这条消息是明文收到的，无法确认发送者，签到、广播和回答命令没有执行。请在公众平台把消息加解密方式设为安全模式或兼容模式后再试。"


def admin_stats(stats) -> str:
    """``统计``: the current event's figures for an organizer."""
    event = stats.event
    channels = "、".join(f"{channel or '直接关注'} {count}" for channel, count in stats.by_channel) or "暂无"
    walk_ins = f"（另有现场补登 {stats.walk_ins} 人）" if stats.walk_ins else ""
    return "\n".join(
        [
            f"「{event.name}」报名统计",
            f"现场：{stats.onsite} / {event.capacity}，剩余 {stats.seats_left} 个座位{walk_ins}",
            f"线上：{stats.online}",
            f"候补：{stats.waitlisted}",
            f"已取消：{stats.cancelled}",
            f"已签到：{stats.checked_in}",
            f"今日新增：{stats.registered_today}",
            f"渠道：{channels}",
        ]
    )


def admin_match_line(index: int, registration, masked_phone: str) -> str:
    status = ADMIN_STATUS_LABELS[registration.status]
    if registration.position:
        status += f" 第 {registration.position} 位"
    arrived = "｜已签到" if registration.checked_in_at else ""
    return (
        f"{index}. {registration.name or '（未填姓名）'}｜{registration.company or '-'}｜{masked_phone or '-'}\n"
        f"   {status}｜签到码 {registration.checkin_code}{arrived}"
    )


def admin_matches(lines: list[str], total: int) -> str:
    more = f"\n共 {total} 条，仅显示前 {len(lines)} 条，请缩小范围。" if total > len(lines) else ""
    return "\n".join(lines) + more


def admin_checked_in(registration, already: bool) -> str:
    who = registration.name or registration.checkin_code
    if already:
        return f"{who} 之前已经签到过了（签到码 {registration.checkin_code}）。"
    return f"已为 {who} 签到（签到码 {registration.checkin_code}）。"


def admin_checkin_unknown(code: str) -> str:
    return f"没有找到签到码 {code} 的报名记录。"


def admin_checkin_refused(registration) -> str:
    return f"{registration.name or registration.checkin_code} 的报名状态是「{ADMIN_STATUS_LABELS[registration.status]}」，不能签到。"


def admin_broadcast_preview(audience: str, recipients: int, text: str) -> str:
    return (
        f"将发送给{ADMIN_AUDIENCE_LABELS[audience]}，共 {recipients} 人。预览：\n\n{text}\n\n"
        "回复「确认广播」发送，回复「取消广播」放弃。"
    )


def admin_broadcast_started(campaign_id: int, recipients: int) -> str:
    return f"广播 #{campaign_id} 已开始发送给 {recipients} 人，发送完成后会把结果发给你。"


def admin_broadcast_report(campaign_id: int, report) -> str:
    """The outcome of a broadcast, sent to the organizer who started it from the chat: delivered X of N
    and who was not reached, and why."""
    lines = [f"广播 #{campaign_id} 发送完成：{delivery_summary(report)}。"]
    if report.missed:
        lines.append("未送达：")
        lines += missed_lines(report, CHAT_MISSED_LIMIT)
    return "\n".join(lines)

# Delivery reports for organizers (CLI, chat, dashboard, API): who was reached, who was not and why.
# Why a follower could not be reached, as the sender records it on the delivery.
REACH_UNFOLLOWED = "已取消关注"
REACH_NEVER_WROTE = "从未与公众号互动"
REACH_WINDOW_CLOSED = "未互动超过 48 小时"
REACH_NOT_SUBSCRIBED = "未授权订阅"
REACH_NO_TEMPLATE = "未配置模板消息"
REACH_NO_SUBSCRIBE_TEMPLATE = "未配置订阅通知"
REACH_NO_CHANNEL = "未配置发送渠道"
REACH_UNKNOWN = "发送结果未知（可能已送达，为免重复未重发）"
REACH_WARNING = "未配置模板消息或订阅通知：提醒只能送达 48 小时内与公众号互动过的人。"
SUBSCRIBE_LINK_WARNING = "已配置订阅通知，但未设置 [bot] public_base_url：报名者收不到授权订阅的链接。"
# WeChat's error codes about one follower, in an organizer's words.
WECHAT_ERROR_REASONS = {
    40003: "openid 无效",
    43004: REACH_UNFOLLOWED,
    43101: REACH_NOT_SUBSCRIBED,
    45015: REACH_WINDOW_CLOSED,
    45047: "48 小时内客服消息已达上限",
}
OUTCOME_LABELS = {"pending": "发送中", "delivered": "已送达", "partly": "部分送达", "none": "未送达"}
CHANNEL_LABELS = {"template": "模板消息", "subscribe": "订阅通知", "customer_service": "客服消息"}
UNNAMED = "（未填姓名）"
# A report in the chat names at most this many of those not reached (a message holds 2048 bytes).
CHAT_MISSED_LIMIT = 10


REMINDER_SCHEDULED = "待发送"
REMINDER_AWAITING_SCHEDULER = "已到时间，等待调度器发送"


def reminder_skipped(reason: str) -> str:
    return f"已跳过：{reason}"


def skipped_late(late_minutes: int, grace_minutes: int) -> str:
    """Why a reminder or scheduled broadcast missed while no scheduler ran was not sent late."""
    return f"晚了 {late_minutes} 分钟，超过允许的 {grace_minutes} 分钟（到时没有进程在运行调度器）"


def skipped_event_over(now: datetime, *, ended: bool) -> str:
    moment = "结束" if ended else "开始"
    return f"可以发送时（{now:%Y-%m-%d %H:%M}）活动已经{moment}"


def reach_quota_used(used: int) -> str:
    return f"48 小时内已发 {used} 条客服消息，已达上限"


def wechat_error_reason(errcode: int | None) -> str:
    if errcode is None:
        return "微信接口暂时不可用，多次重试仍失败"
    return WECHAT_ERROR_REASONS.get(errcode, f"微信接口错误 码 {errcode}")


def delivery_summary(report) -> str:
    """``部分送达：3/5 人收到，1 人待发送`` for a ``DeliveryReport``; the label follows the outcome."""
    line = f"{OUTCOME_LABELS[report.outcome]}：{report.delivered}/{report.recipients} 人收到"
    return line + (f"，{report.pending} 人待发送" if report.pending else "")


def missed_line(missed) -> str:
    """One person not reached: ``张三：未互动超过 48 小时``."""
    return f"{missed.name or UNNAMED}：{missed.reason}"


def missed_lines(report, limit: int | None = None) -> list[str]:
    """Who was not reached and why, at most ``limit`` of them and then how many more."""
    shown = report.missed if limit is None else report.missed[:limit]
    lines = [missed_line(missed) for missed in shown]
    if len(report.missed) > len(shown):
        lines.append(f"……另有 {len(report.missed) - len(shown)} 人")
    return lines


# The 订阅通知 grant: the invitation after 确认, and the page it links to (``GET /subscribe/<event id>``).
SUBSCRIBE_PAGE_TITLE = "接收活动提醒"
SUBSCRIBE_BUTTON = "允许发送活动提醒"
SUBSCRIBE_DONE = "已允许：活动前会用订阅通知给你发一条提醒。"
SUBSCRIBE_DECLINED = "你没有允许，活动提醒可能无法送达。需要时可以再次点击上面的按钮。"
SUBSCRIBE_FAILED = "暂时无法开启，请稍后再试。"
SUBSCRIBE_NOT_OFFERED = "这个页面没有可以订阅的活动提醒。"
SUBSCRIBE_UNAVAILABLE = "页面暂时无法打开，请稍后再试。"
# Why the grant matters, said the same on the page and in the chat.
SUBSCRIBE_WHY = "微信只允许公众号给 48 小时内与它互动过的人主动发消息"


def subscribe_explanation(event: Event, tz) -> str:
    return (
        f"「{event.name}」将于 {event_when(event, tz)} 开始。{SUBSCRIBE_WHY}。"
        "点击下方按钮，允许一次「活动提醒」订阅通知，活动前我们会用它给你发一条提醒；"
        "每次允许只能发送一条，不会用于其他消息。"
    )


def subscribe_invitation(url: str) -> str:
    return f"想在活动前收到提醒？{SUBSCRIBE_WHY}，打开这个链接允许一次「活动提醒」订阅通知即可：{url}"


# What organizers read when the admin API, the dashboard or the CLI refuses something.
def checkin_online_warning(registration) -> str:
    return f"注意：{registration.name or registration.checkin_code} 报名的是线上观看，没有为其预留现场座位。"


BROADCAST_TEXT_EMPTY = "消息内容不能为空。"


def organizer_unknown_event(event_id: str) -> str:
    return f"没有这个活动：{event_id}（请检查 config.toml 里的活动 id）。"


def organizer_unknown_registration(registration_id: int) -> str:
    return f"没有编号为 {registration_id} 的报名记录。"


def organizer_unknown_audience(audience: str) -> str:
    choices = "、".join(f"{key}（{label}）" for key, label in ADMIN_AUDIENCE_LABELS.items())
    return f"没有「{audience}」这个发送对象，可选：{choices}。"


def organizer_room_full(capacity: int) -> str:
    return f"现场 {capacity} 个座位已满，不能再添加现场补登。"


def organizer_unknown_broadcast(campaign_id: int) -> str:
    return f"没有编号为 {campaign_id} 的群发。"


def organizer_broadcast_started(campaign_id: int) -> str:
    return f"群发 #{campaign_id} 已经开始发送（或已取消、已跳过），不能再取消。"


# The admin API's refusals of bad input (422): each field as the dashboard names it, and what is wrong.
ADMIN_FIELD_LABELS = {
    "page": "页码",
    "page_size": "每页条数",
    "q": "搜索词",
    "status": "状态",
    "checked_in": "签到",
    "attendance": "参加方式",
    "order": "排序",
    "raw": "原始格式",
    "event_id": "活动",
    "audience": "发送对象",
    "text": "消息内容",
    "send_at": "发送时间",
    "code": "签到码",
    "name": "姓名",
    "phone": "手机号",
    "registration_id": "报名编号",
    "broadcast_id": "群发编号",
    "question_id": "问题编号",
    "body": "请求内容",
}
DATETIME_EXPECTED = "日期时间格式不对，应如 2023-03-26T13:00+08:00"
# By pydantic's error type; {ge}, {max_length}, {expected} … come from the error's context.
INPUT_PROBLEMS = {
    "missing": "必须填写",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "int_parsing_size": "数字太大",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "应大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "less_than": "应小于 {lt}",
    "string_too_short": "不能少于 {min_length} 个字",
    "string_too_long": "最多 {max_length} 个字",
    "string_type": "应为文字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "literal_error": "只能是 {expected}",
    "datetime_parsing": DATETIME_EXPECTED,
    "datetime_from_date_parsing": DATETIME_EXPECTED,
    "datetime_type": DATETIME_EXPECTED,
    "json_invalid": "不是有效的 JSON",
    "model_attributes_type": "应为 JSON 对象",
    "dict_type": "应为 JSON 对象",
}
INPUT_PROBLEM_UNKNOWN = "取值无效"
SEND_AT_PASSED = "这个时间已经过去了，请选一个以后的时间；要立即发送，请留空。"


def field_problem(field: str, problem: str) -> str:
    return f"{ADMIN_FIELD_LABELS.get(field, field)}：{problem}"


# QR codes (the dashboard and the admin API).
QR_NOT_CONFIGURED = "没有配置 WECHAT_APP_ID 和 WECHAT_APP_SECRET，无法向微信申请二维码。"
QR_WECHAT_UNREACHABLE = "暂时连不上微信接口，请稍后再试。"


def qr_refused(errcode: int, errmsg: str) -> str:
    return f"微信拒绝生成二维码：错误码 {errcode}（{errmsg}）。"


def qr_unknown_channel(name: str) -> str:
    return f"没有「{name}」这个渠道：请先在 config.toml 的 [qr] channels 里添加。"


# The registrations' export (CSV, .xlsx) as organizers read it; ``--raw`` / ``raw=true`` keeps machine names.
EXPORT_HEADERS = {
    "id": "编号",
    "status": "状态",
    "position": "候补位次",
    "name": "姓名",
    "phone": "手机号",
    "company": "公司/单位",
    "title": "职位",
    "attendance": "参加方式",
    "walk_in": "现场补登",
    "checkin_code": "签到码",
    "channel": "渠道",
    "created_at": "报名时间",
    "checked_in_at": "签到时间",
    "openid_hash": "用户标识（脱敏）",
}
EXPORT_ATTENDANCE = {"onsite": "现场", "online": "线上"}


def export_values(values: dict, time_format: str) -> dict:
    """One registration's cells in Chinese: statuses and attendance as words, times local and readable."""
    readable = dict(values)
    readable["status"] = ADMIN_STATUS_LABELS[values["status"]]
    readable["attendance"] = EXPORT_ATTENDANCE[values["attendance"]]
    readable["walk_in"] = "是" if values["walk_in"] else ""
    readable["channel"] = values["channel"] or ("" if values["walk_in"] else "直接关注")
    for moment in ("created_at", "checked_in_at"):
        if values[moment] is not None:
            readable[moment] = values[moment].strftime(time_format)
    return readable


# What organizers hear without asking (``[organizer_notices]``).
DIGEST_NAMES_SHOWN = 20
DIGEST_QUESTIONS_SHOWN = 5


ORGANIZER_PHONE_SHARED = "注意：该手机号与本活动另一份报名相同。"


def organizer_registration_notice(event: Event, registration, phone_shared: bool = False) -> str:
    who = registration.name or registration.checkin_code
    company = f"（{registration.company}）" if registration.company else ""
    status = ADMIN_STATUS_LABELS[registration.status]
    if registration.position:
        status += f"，第 {registration.position} 位"
    flag = ORGANIZER_PHONE_SHARED if phone_shared else ""
    return f"新报名「{event.name}」：{who}{company}，{EXPORT_ATTENDANCE[registration.attendance]}，{status}。{flag}"


def organizer_digest(stats, new_registrations: list, unanswered: list, day) -> str:
    """The daily digest: where the event stands, who registered in the day before, and the questions
    (groups of the same question) still waiting for an organizer's answer, the most asked first."""
    event = stats.event
    names = "、".join(registration.name or registration.checkin_code for registration in new_registrations[:DIGEST_NAMES_SHOWN])
    more = f" 等 {len(new_registrations)} 人" if len(new_registrations) > DIGEST_NAMES_SHOWN else ""
    return "\n".join(
        [
            f"「{event.name}」{day.month} 月 {day.day} 日报名日报",
            f"现场：{stats.onsite} / {event.capacity}，剩余 {stats.seats_left} 个座位",
            f"线上：{stats.online}，候补：{stats.waitlisted}，已取消：{stats.cancelled}",
            f"过去 24 小时新报名 {len(new_registrations)} 人" + (f"：{names}{more}" if names else "。"),
            f"待回答的问题 {len(unanswered)} 个"
            + ("：" + "；".join(f"{group.text}（{group.askers} 人问）" for group in unanswered[:DIGEST_QUESTIONS_SHOWN])
               if unanswered else "。"),
        ]
    )
# Personal data: the notice before the form, 我的信息, 删除我的信息. The notice may be set in config.toml.
PRIVACY_NOTICE = (
    "报名前请了解：我们会收集你的{fields}，仅用于「{event}」的报名、签到和活动提醒，只有主办方工作人员可以查看，"
    "活动结束 {keep_days} 天后删除。随时回复「我的信息」查看，回复「删除我的信息」删除。"
)
CONSENT_WORDS = frozenset({"同意"})
CONSENT_PROMPT = "回复「同意」继续报名，回复「取消」退出。"
CONSENT_NEEDED = "需要你同意后才能继续报名，回复的内容没有保存。"
NO_PERSONAL_DATA = "我们没有保存你的报名信息。"
ERASE_CONFIRM_PROMPT = (
    "确定删除你的个人信息吗？你的报名信息（姓名、手机号等）将被删除，未开始活动的报名会同时取消，名额让给候补的朋友。"
    "回复「确认」删除，回复其他内容保留。"
)
ERASE_KEPT = "好的，你的信息没有删除。"
# What WeChat's retry of 我的信息 gets: the stored reply holds none of the fields it showed.
PERSONAL_DATA_STAND_IN = "为保护你的个人信息，请再回复一次「我的信息」查看你登记的内容。"
ERASED = "已删除你的个人信息：报名记录中的姓名、手机号、公司和职位，以及保存的聊天回复都已清除，未开始活动的报名已取消。"


def privacy_notice(template: str, event: Event, fields: list[str], keep_days: int) -> str:
    """The notice before the form's first field (``template`` from config.toml, or the default)."""
    labels = "、".join(FIELD_LABELS[field] for field in fields)
    notice = (template or PRIVACY_NOTICE).format(event=event.name, fields=labels, keep_days=keep_days)
    return f"{notice}\n{CONSENT_PROMPT}"


def kept_for_reuse_heading(event_name: str, until: datetime, tz) -> str:
    """我的信息's heading for the answers kept after 取消报名."""
    return f"{event_name}：{KEPT_FOR_REUSE}（保留到 {moment_text(until, tz)}）"


def personal_data(records: list[tuple[str, list[tuple[str, str]]]], channel: str | None) -> str:
    """What 我的信息 shows: each registration's heading and (label, value) lines, then what else is kept."""
    blocks = [f"「{title}」\n{_lines(lines)}" for title, lines in records]
    kept = f"关注来源渠道（{channel}）、" if channel else ""
    others = f"另外保存了：{kept}最近一次发消息的时间（用于 48 小时内回复你）。"
    body = "\n\n".join(blocks) if blocks else NO_PERSONAL_DATA
    return f"你的信息（仅主办方工作人员可见，手机号已隐去中间四位）：\n{body}\n\n{others}\n回复「删除我的信息」可删除。"
