// i18n.js - every string the promotion page shows.
//
// `ko` is the one object holding all Korean UI text; `en` is the English
// fallback with the same keys. pickLanguage() decides which one the page
// uses. Strings that need a value are small functions. Nothing here ever
// states a dice count: numbers on the page come from the API only.

export const ko = {
  pageTitle: '행운 주사위',
  title: '행운 주사위',
  tagline: '주사위를 굴리고 기프티콘 행운을 잡아 보세요!',
  period: (first, last) => `이벤트 기간 ${first} ~ ${last}`,
  loading: '불러오는 중이에요…',

  balanceLabel: '내 주사위',
  balanceUnit: '개',
  roll: '주사위 굴리기',
  rollHint: '주사위 1개로 한 번 굴릴 수 있어요. 당첨되면 쿠폰함으로 보내 드려요.',
  rolling: '주사위를 굴리는 중…',
  win: (prize) => `축하해요! ${prize} 당첨!`,
  winNote: '쿠폰함으로 보내 드릴게요. 알림을 확인해 주세요.',
  miss: '아쉽게도 꽝이에요. 다음 기회에!',

  inviteTitle: '친구 초대하기',
  inviteText: '친구가 내 링크로 처음 참여하면 나와 친구 모두 주사위를 더 받아요.',
  inviteLinkLabel: '내 초대 링크',
  inviteLinkLoading: '링크를 만드는 중…',
  inviteLinkUnavailable: '초대 링크를 불러오지 못했어요.',
  copy: '링크 복사',
  copied: '링크를 복사했어요. 친구에게 보내 보세요!',
  copyFailed: '자동으로 복사하지 못했어요. 링크를 길게 눌러 복사해 주세요.',
  share: '공유하기',
  shareText: '행운 주사위 같이 굴려요! 이 링크로 참여하면 주사위를 더 받아요.',
  shareFailed: '공유하지 못했어요. 링크 복사를 이용해 주세요.',
  friendsLabel: '초대로 참여한 친구',
  friendsUnit: '명',

  historyTitle: '내 기록',
  historyEmpty: '아직 기록이 없어요.',
  reasons: {
    visit: '첫 방문 선물',
    inviter: '친구 초대 보너스',
    invitee: '초대 참여 보너스',
    support: '고객센터 지급',
    revoke: '주사위 회수',
  },
  reasonOther: '주사위 지급',
  delta: (sign, n) => `${sign}${n}개`,
  drawWin: (prize) => `주사위 굴림 · ${prize} 당첨`,
  drawMiss: '주사위 굴림 · 꽝',
  time: (month, day, hh, mm) => `${month}월 ${day}일 ${hh}:${mm}`,

  retry: '다시 시도',

  // Keyed by the API error code (or the bonus kind) shown in #message.
  messages: {
    visit_bonus: '환영해요! 첫 방문 선물로 주사위를 받았어요.',
    invite_bonus: '친구 초대 보너스! 초대 링크로 참여해서 주사위를 더 받았어요.',
    invite_claimed: '이미 적용된 초대 링크예요.',
    promotion_not_active: '지금은 이벤트 기간이 아니에요. 가진 주사위와 당첨 내역은 계속 볼 수 있어요.',
    promotion_not_started: '아직 이벤트가 시작되지 않았어요. 시작일에 다시 찾아 주세요.',
    promotion_ended: '이벤트가 끝났어요. 가진 주사위와 당첨 내역은 계속 볼 수 있어요.',
    promotion_paused: '이벤트를 잠시 멈췄어요. 곧 다시 열릴 거예요. 가진 주사위와 당첨 내역은 계속 볼 수 있어요.',
    unknown_promotion: '이벤트를 찾을 수 없어요. 링크를 다시 확인해 주세요.',
    unknown_code: '없는 초대 코드예요. 링크를 다시 확인해 주세요.',
    already_credited: '이미 친구 초대 보너스를 받으셨어요.',
    self_invite: '내 초대 링크로는 보너스를 받을 수 없어요. 친구에게 공유해 보세요!',
    not_new_user: '친구 초대 보너스는 이벤트에 처음 참여하는 분만 받을 수 있어요.',
    claim_limited: '이 기기에서 오늘 받을 수 있는 초대 보너스를 모두 받았어요. 내일 다시 시도해 주세요.',
    no_tickets: '남은 주사위가 없어요. 친구를 초대하고 주사위를 더 받아 보세요!',
    unauthorized: '로그인이 필요해요. 앱에서 이 페이지를 다시 열어 주세요.',
    network: '네트워크 연결이 원활하지 않아요. 연결을 확인하고 다시 시도해 주세요.',
    unavailable: '지금 참여하는 분이 많아요. 잠시 후 다시 시도해 주세요.',
    rate_limited: '요청이 너무 많아요. 잠시 후 다시 시도해 주세요.',
    error: '문제가 생겼어요. 잠시 후 다시 시도해 주세요.',
  },
};

export const en = {
  pageTitle: 'Lucky Dice',
  title: 'Lucky Dice',
  tagline: 'Roll the dice for a chance to win a gift coupon!',
  period: (first, last) => `Runs ${first} – ${last}`,
  loading: 'Loading…',

  balanceLabel: 'Your dice',
  balanceUnit: '',
  roll: 'Roll the dice',
  rollHint: 'Each roll uses one dice. Prizes are sent to your coupon box.',
  rolling: 'Rolling…',
  win: (prize) => `Congratulations! You won: ${prize}!`,
  winNote: 'It will be sent to your coupon box. Watch for a notification.',
  miss: 'No prize this time. Better luck next roll!',

  inviteTitle: 'Invite friends',
  inviteText: 'When a friend joins for the first time through your link, you both get more dice.',
  inviteLinkLabel: 'Your invite link',
  inviteLinkLoading: 'Making your link…',
  inviteLinkUnavailable: 'Could not load your invite link.',
  copy: 'Copy link',
  copied: 'Link copied. Send it to a friend!',
  copyFailed: 'Could not copy automatically. Press and hold the link to copy it.',
  share: 'Share',
  shareText: 'Roll Lucky Dice with me! Join through this link to get extra dice.',
  shareFailed: 'Could not share. Please use Copy link instead.',
  friendsLabel: 'Friends who joined',
  friendsUnit: '',

  historyTitle: 'Your history',
  historyEmpty: 'Nothing here yet.',
  reasons: {
    visit: 'First-visit gift',
    inviter: 'Invite bonus (a friend joined)',
    invitee: 'Joined through an invite',
    support: 'Added by customer support',
    revoke: 'Dice taken back',
  },
  reasonOther: 'Dice added',
  delta: (sign, n) => `${sign}${n}`,
  drawWin: (prize) => `Rolled · won ${prize}`,
  drawMiss: 'Rolled · no prize',
  time: (month, day, hh, mm) => `${month}/${day} ${hh}:${mm}`,

  retry: 'Try again',

  messages: {
    visit_bonus: 'Welcome! You got dice for your first visit.',
    invite_bonus: 'Friend bonus! You got extra dice for joining through an invite.',
    invite_claimed: 'This invite link was already applied.',
    promotion_not_active: 'The promotion is not running right now. You can still see your dice and prizes.',
    promotion_not_started: 'The promotion has not started yet. Please come back on the first day.',
    promotion_ended: 'The promotion has ended. You can still see your dice and prizes.',
    promotion_paused: 'The promotion is paused for a moment and will be back soon. You can still see your dice and prizes.',
    unknown_promotion: 'We could not find this promotion. Please check the link.',
    unknown_code: 'That invite code does not exist. Please check the link.',
    already_credited: 'You have already received an invite bonus.',
    self_invite: 'That is your own invite link. Share it with your friends instead!',
    not_new_user: 'Invite bonuses are only for people joining the promotion for the first time.',
    claim_limited: 'This device has received all the invite bonuses allowed today. Please try again tomorrow.',
    no_tickets: 'No dice left. Invite friends to get more!',
    unauthorized: 'You are signed out. Please open this page again from the app.',
    network: 'Connection problem. Check your network and try again.',
    unavailable: 'We are very busy right now. Please try again in a moment.',
    rate_limited: 'Too many requests. Please wait a moment and try again.',
    error: 'Something went wrong. Please try again in a moment.',
  },
};

// "ko" or "en": ?lang=en|ko wins; otherwise Korean only when the browser's
// language starts with "ko", English for everyone else.
export function pickLanguage(search = location.search, browser = navigator.language) {
  const asked = new URLSearchParams(search).get('lang');
  if (asked === 'en' || asked === 'ko') return asked;
  return String(browser || '').toLowerCase().startsWith('ko') ? 'ko' : 'en';
}
