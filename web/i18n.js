// Every user-visible string of the web app, one table per language (issue 9: English and
// Simplified Chinese). t(key, {vars}) in lib.js looks them up; {name} is replaced.
// Sections per page; each page uses its own key prefix (term_, ev_, ph_, adm_, map_).
export const STRINGS = {
  en: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "Log in", user: "User", password: "Password", login: "Log in",
    logout: "Log out", bad_login: "Wrong user name or password.",
    too_many: "Too many failed logins; try again in {s} s.", unreachable: "The server cannot be reached.",
    session_ended: "Your session has ended; please log in again.",
    http_error: "The server answered {status}.", page_failed: "This page failed: {msg}",
    not_found: "No such page", forbidden: "This page is for administrators.",
    skip: "Skip to content", loading: "Loading…", none: "—",
    role_viewer: "viewer", role_operator: "operator", role_admin: "admin",
    nav_fleet: "Fleet", nav_events: "Events", nav_phase: "Phase", nav_admin: "Admin",
    live: "live", reconnecting: "reconnecting…", offline_app: "offline: showing the last known state",
    ago_s: "{n} s ago", ago_min: "{n} min ago", ago_h: "{n} h ago", ago_d: "{n} d ago",
    todo_page: "This page is not built yet.",

    // ---- fleet page (page-fleet.js) ----
    fleet: "Fleet", online: "online", offline: "offline", with_events: "with open events",
    id: "Terminal", name: "Name", state: "State", last_seen: "Last data", rsrp: "Signal",
    supply: "Supply", temperature: "Temperature", time_q: "Time", buffered: "Buffered",
    analysis: "Analysis", behind: "behind", ok: "ok", events_open: "Open events",
    analysis_delay: "results {s} s after the samples",
    tq_none: "unknown", tq_gps: "GPS locked", tq_net: "network synced", tq_free: "free running",
    sats: "{n} sats", search: "Search", search_hint: "id or name", show: "Show",
    filter_all: "all", filter_online: "online", filter_offline: "offline", filter_events: "with open events",
    no_match: "No terminal matches the search or filter.", map: "Map of terminal locations",
    empty: "No terminals yet: an admin adds them on the Admin page or with `gridsense terminal add`.",

    // ---- terminal page (page-terminal.js) ----
    term_title: "Terminal {id}", term_since: "online since", term_last: "last data", term_fw: "firmware",
    term_ch: "channels", term_tabs: "Terminal views", term_tab_live: "Live", term_tab_trends: "Trends",
    term_tab_status: "Status", term_tab_events: "Events", term_tab_commands: "Commands",
    // (live tab: term-live.js, keys tl_)

    // ---- terminal history tabs (term-history.js, keys th_) ----
    th_detail: "Zoomed in: {iv} ({n}) from", th_detail_loading: "Reading the {iv} of the zoomed part…",
    th_zoom_in: "Zoom in", th_zoom_out: "Zoom out", th_time: "Time", th_values_table: "Values of the range", th_events_label: "Events of this terminal", th_range: "Range", th_range_hour: "last hour", th_range_day: "last 24 h", th_range_week: "last 7 days",
    th_range_month: "last 30 days", th_quantity: "Quantity", th_interval: "Interval", th_iv_auto: "automatic",
    th_iv_threes: "3 s values", th_iv_tenmin: "10 min values", th_iv_twoh: "2 h values", th_side: "Values",
    th_primary: "primary", th_secondary: "secondary", th_earlier: "◀ Earlier", th_later: "Later ▶",
    th_reset: "Reset zoom", th_now: "Now", th_q_freq: "Frequency (mean, min, max)", th_q_urms: "RMS voltages",
    th_q_irms: "RMS currents", th_q_thd: "THD of the voltages", th_q_ithd: "THD of the currents",
    th_q_unb: "Unbalance u0, u2, i0, i2", th_q_power: "Power P, Q, S", th_axis_hz: "Hz", th_axis_pct: "%",
    th_mean: "mean", th_min: "min", th_max: "max", th_last: "last", th_last_time: "last value at", th_series: "Series",
    th_info: "{iv}: {n} stored, from", th_truncated: "(only the first part of the range: choose a coarser interval)",
    th_truncated_newest: "(only the newest reports of the range are shown)",
    th_empty: "No stored {iv} in this range: the terminal has been offline, or was added recently (a 10 min or 2 h value is stored once its interval has passed). Choose the 3 s values (Interval) for recent data.",
    th_empty_fine: "No stored 3 s values in this range: the terminal has been offline (or analysis is off). Choose a longer range or a coarser interval.",
    th_no_channels: "The stored values hold no channel of this kind: choose another quantity.",
    th_stats_caption: "{q}: values of the range",
    th_zoom_hint: "Drag across the chart (or “Zoom in”) to zoom in, double-click or “Reset zoom” to see the whole range; Shift-drag or the buttons pan. On a phone: pinch to zoom, drag to pan. Times are local; the legend also shows UTC.",
    th_status_title: "Status history", th_status_info: "{n} status reports from",
    th_status_empty: "No status reports in this range: the terminal has been offline (online terminals report every 10 s by default). Choose a longer range.",
    th_signal: "Signal (RSRP, RSSI in dBm; CSQ)", th_temperature: "Temperature", th_supply: "Supply voltage",
    th_sessions_title: "Sessions", th_connected: "Connected", th_disconnected: "Disconnected", th_duration: "Duration",
    th_remote: "Remote address", th_reason: "Reason", th_blocks: "Blocks", th_bytes: "Data",
    th_still_open: "still connected", th_not_closed: "not closed (server stopped)",
    th_sessions_empty: "No sessions yet: the terminal has never logged in. Check its secret and server address.",
    th_more: "Show older", th_events_note: "Voltage events of this terminal, newest first; new ones appear here as they end.",
    th_event: "Event", th_kind: "Kind", th_start: "Start", th_residual: "Residual / maximum", th_maximum: "max",
    th_channels: "Channels", th_worst: "worst", th_ack: "Acknowledged", th_acked_by: "by {user} at", th_not_acked: "not yet",
    th_kind_dip: "dip", th_kind_swell: "swell", th_kind_interruption: "interruption",
    th_events_empty: "No voltage events recorded for this terminal. Dips, swells and interruptions appear here live as they end.",
    th_commands_title: "Commands", th_id: "Id", th_verb: "Verb", th_args: "Arguments", th_state: "State",
    th_created: "Created", th_updated: "Updated", th_result: "Result", th_actions: "Actions", th_cancel: "Cancel",
    th_cancel_n: "Cancel command {n}", th_s_queued: "queued", th_s_sent: "sent", th_s_acked: "acknowledged",
    th_s_done: "done", th_s_failed: "failed", th_s_expired: "expired", th_s_cancelled: "cancelled",
    th_r_ok: "OK", th_r_accepted: "accepted", th_r_unknown_verb: "unknown verb", th_r_bad_args: "bad arguments",
    th_r_busy: "busy (send again later)", th_r_failed: "failed", th_r_other: "status {n}", th_block: "block {n}",
    th_offset: "clock offset {v}", th_rtt: "round trip {v}", th_no_answer: "no answer before it expired",
    th_never_sent: "never sent",
    th_commands_empty: "No commands were sent to this terminal yet.",
    th_commands_empty_op: "No commands were sent to this terminal yet: send one with the form above.",
    th_viewer_note: "Only operators and administrators can send commands; ask one if this terminal needs a command.",
    th_send_title: "Send a command", th_send: "Send", th_ttl: "Expires after (s)", th_ttl_default: "default 24 h",
    th_optional: ", optional", th_no_args: "This verb takes no arguments.", th_unchanged: "unchanged",
    th_on: "on", th_off: "off", th_reboot_confirm: "Yes, restart the terminal (its data stops until it is back)",
    th_a_cycles: "Cycles (total)", th_a_pretrigger: "Cycles before the trigger", th_a_report_interval: "Status interval",
    th_a_stream: "Waveform streaming", th_a_dip: "Dip threshold", th_a_swell: "Swell threshold",
    th_v_get_status: "Ask for a status report now.",
    th_v_capture: "Record a waveform capture now (an EVENT block); empty fields use the terminal's defaults.",
    th_v_stream_start: "Start continuous waveform streaming.", th_v_stream_stop: "Stop continuous waveform streaming.",
    th_v_set_config: "Change settings (only the fields filled in); dip and swell in % of the declared voltage.",
    th_v_time_sync: "Measure the terminal's clock offset and the round trip.",
    th_v_reboot: "Restart the terminal.",
    th_err_int: "{name}: a whole number from {min} to {max}.", th_err_dec: "{name}: a number from {min} to {max} (one decimal at most).",
    th_err_pretrigger: "The cycles before the trigger must be fewer than the total cycles.",
    th_err_set_config: "Fill in at least one setting to change.", th_err_reboot: "Tick the box to confirm the restart.",
    th_err_fix: "The command was not sent: correct the fields marked below.",
    th_sent_ok: "Command #{n} created ({state}); its state updates below.",

    // ---- events page (page-events.js) ----

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of en ----
  },
  zh: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "登录", user: "用户名", password: "密码", login: "登录",
    logout: "退出", bad_login: "用户名或密码错误。",
    too_many: "登录失败次数过多，请在 {s} 秒后重试。", unreachable: "无法连接服务器。",
    session_ended: "会话已结束，请重新登录。",
    http_error: "服务器返回 {status}。", page_failed: "页面出错：{msg}",
    not_found: "页面不存在", forbidden: "此页面仅供管理员使用。",
    skip: "跳到正文", loading: "加载中…", none: "—",
    role_viewer: "查看者", role_operator: "操作员", role_admin: "管理员",
    nav_fleet: "终端总览", nav_events: "事件", nav_phase: "相角", nav_admin: "管理",
    live: "实时", reconnecting: "正在重连…", offline_app: "离线：显示最后已知状态",
    ago_s: "{n} 秒前", ago_min: "{n} 分钟前", ago_h: "{n} 小时前", ago_d: "{n} 天前",
    todo_page: "此页面尚未完成。",

    // ---- fleet page (page-fleet.js) ----
    fleet: "终端总览", online: "在线", offline: "离线", with_events: "有未确认事件",
    id: "终端", name: "名称", state: "状态", last_seen: "最近数据", rsrp: "信号",
    supply: "供电", temperature: "温度", time_q: "时间", buffered: "缓存块",
    analysis: "分析", behind: "滞后", ok: "正常", events_open: "未确认事件",
    analysis_delay: "结果比采样晚 {s} 秒",
    tq_none: "未知", tq_gps: "GPS 锁定", tq_net: "网络同步", tq_free: "自由运行",
    sats: "{n} 颗卫星", search: "搜索", search_hint: "编号或名称", show: "显示",
    filter_all: "全部", filter_online: "在线", filter_offline: "离线", filter_events: "有未确认事件",
    no_match: "没有符合搜索或筛选条件的终端。", map: "终端位置地图",
    empty: "还没有终端：管理员可在“管理”页面或用 `gridsense terminal add` 添加。",

    // ---- terminal page (page-terminal.js) ----
    term_title: "终端 {id}", term_since: "在线自", term_last: "最近数据", term_fw: "固件",
    term_ch: "通道", term_tabs: "终端视图", term_tab_live: "实时", term_tab_trends: "趋势",
    term_tab_status: "状态", term_tab_events: "事件", term_tab_commands: "命令",
    // (live tab: term-live.js, keys tl_)

    // ---- terminal history tabs (term-history.js, keys th_) ----
    th_detail: "已放大：{iv}（{n} 个），时间", th_detail_loading: "正在读取放大部分的{iv}…",
    th_zoom_in: "放大", th_zoom_out: "缩小", th_time: "时间", th_values_table: "此范围内的数值", th_events_label: "此终端的事件", th_range: "时间范围", th_range_hour: "最近 1 小时", th_range_day: "最近 24 小时", th_range_week: "最近 7 天",
    th_range_month: "最近 30 天", th_quantity: "测量量", th_interval: "统计间隔", th_iv_auto: "自动",
    th_iv_threes: "3 秒值", th_iv_tenmin: "10 分钟值", th_iv_twoh: "2 小时值", th_side: "数值",
    th_primary: "一次侧", th_secondary: "二次侧", th_earlier: "◀ 更早", th_later: "更晚 ▶",
    th_reset: "重置缩放", th_now: "现在", th_q_freq: "频率（平均、最小、最大）", th_q_urms: "电压有效值",
    th_q_irms: "电流有效值", th_q_thd: "电压总谐波畸变率", th_q_ithd: "电流总谐波畸变率",
    th_q_unb: "不平衡度 u0、u2、i0、i2", th_q_power: "功率 P、Q、S", th_axis_hz: "Hz", th_axis_pct: "%",
    th_mean: "平均", th_min: "最小", th_max: "最大", th_last: "最新", th_last_time: "最新值时间", th_series: "序列",
    th_info: "{iv}：已存储 {n} 个，时间", th_truncated: "（仅显示范围的前一部分：请选择更粗的间隔）",
    th_truncated_newest: "（仅显示范围内最新的报告）",
    th_empty: "此范围内没有已存储的{iv}：终端曾离线，或刚添加（10 分钟值和 2 小时值在其间隔结束后才存储）。最近的数据请在“统计间隔”中选择 3 秒值。",
    th_empty_fine: "此范围内没有已存储的 3 秒值：终端曾离线（或分析已关闭）。请选择更长的范围或更粗的间隔。",
    th_no_channels: "已存储的数值中没有此类通道：请选择其他测量量。",
    th_stats_caption: "{q}：此范围内的数值",
    th_zoom_hint: "在图上拖动（或点“放大”）以放大，双击或“重置缩放”以显示整个范围；按住 Shift 拖动或用按钮平移。手机上：双指缩放，单指拖动平移。时间为本地时间，图例中同时显示 UTC。",
    th_status_title: "状态历史", th_status_info: "{n} 条状态报告，时间",
    th_status_empty: "此范围内没有状态报告：终端曾离线（在线终端默认每 10 秒报告一次）。请选择更长的范围。",
    th_signal: "信号（RSRP、RSSI，单位 dBm；CSQ）", th_temperature: "温度", th_supply: "电源电压",
    th_sessions_title: "会话", th_connected: "连接时间", th_disconnected: "断开时间", th_duration: "时长",
    th_remote: "远端地址", th_reason: "原因", th_blocks: "数据块", th_bytes: "数据量",
    th_still_open: "仍在连接", th_not_closed: "未关闭（服务器已停止）",
    th_sessions_empty: "还没有会话：终端从未登录。请检查其密钥和服务器地址。",
    th_more: "显示更早的", th_events_note: "此终端的电压事件，最新的在前；新事件结束时会实时出现在这里。",
    th_event: "事件", th_kind: "类型", th_start: "开始", th_residual: "残余 / 最大值", th_maximum: "最大",
    th_channels: "通道", th_worst: "最严重", th_ack: "已确认", th_acked_by: "由 {user} 确认于", th_not_acked: "尚未确认",
    th_kind_dip: "暂降", th_kind_swell: "暂升", th_kind_interruption: "中断",
    th_events_empty: "此终端还没有电压事件记录。暂降、暂升和中断结束时会实时出现在这里。",
    th_commands_title: "命令", th_id: "编号", th_verb: "命令", th_args: "参数", th_state: "状态",
    th_created: "创建时间", th_updated: "更新时间", th_result: "结果", th_actions: "操作", th_cancel: "取消",
    th_cancel_n: "取消命令 {n}", th_s_queued: "排队中", th_s_sent: "已发送", th_s_acked: "已接受",
    th_s_done: "完成", th_s_failed: "失败", th_s_expired: "已过期", th_s_cancelled: "已取消",
    th_r_ok: "成功", th_r_accepted: "已接受", th_r_unknown_verb: "未知命令", th_r_bad_args: "参数错误",
    th_r_busy: "忙（请稍后重发）", th_r_failed: "失败", th_r_other: "状态 {n}", th_block: "数据块 {n}",
    th_offset: "时钟偏差 {v}", th_rtt: "往返时间 {v}", th_no_answer: "过期前没有应答",
    th_never_sent: "从未发送",
    th_commands_empty: "还没有向此终端发送过命令。",
    th_commands_empty_op: "还没有向此终端发送过命令：请用上面的表单发送。",
    th_viewer_note: "只有操作员和管理员可以发送命令；如此终端需要命令，请联系他们。",
    th_send_title: "发送命令", th_send: "发送", th_ttl: "有效期（秒）", th_ttl_default: "默认 24 小时",
    th_optional: "，可选", th_no_args: "此命令没有参数。", th_unchanged: "不变",
    th_on: "开", th_off: "关", th_reboot_confirm: "是的，重启终端（重启期间没有数据）",
    th_a_cycles: "周波数（总计）", th_a_pretrigger: "触发前周波数", th_a_report_interval: "状态报告间隔",
    th_a_stream: "波形连续上传", th_a_dip: "暂降阈值", th_a_swell: "暂升阈值",
    th_v_get_status: "立即请求一次状态报告。",
    th_v_capture: "立即录制一段波形（EVENT 数据块）；留空的字段使用终端的默认值。",
    th_v_stream_start: "开始连续上传波形。", th_v_stream_stop: "停止连续上传波形。",
    th_v_set_config: "修改设置（仅修改已填写的字段）；暂降和暂升阈值为标称电压的百分比。",
    th_v_time_sync: "测量终端的时钟偏差和往返时间。",
    th_v_reboot: "重启终端。",
    th_err_int: "{name}：须为 {min} 到 {max} 之间的整数。", th_err_dec: "{name}：须为 {min} 到 {max} 之间的数（最多一位小数）。",
    th_err_pretrigger: "触发前周波数必须小于总周波数。",
    th_err_set_config: "请至少填写一项要修改的设置。", th_err_reboot: "请勾选确认框以确认重启。",
    th_err_fix: "命令未发送：请更正下面标出的字段。",
    th_sent_ok: "命令 #{n} 已创建（{state}）；其状态在下方更新。",

    // ---- events page (page-events.js) ----

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of zh ----
  },
};
